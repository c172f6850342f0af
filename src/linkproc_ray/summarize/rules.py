"""The output boundary: whatever a model answers is parsed and checked here before it becomes an event."""

from __future__ import annotations

import json
import re
from typing import Any

from linkproc_ray.errors import AIInvalidOutput
from linkproc_ray.summarize.boundary import addresses_model, neutralize
from linkproc_ray.summarize.prompt import echoes_instructions
from linkproc_ray.summarize.protocol import SUMMARY_MAX_CHARS, SUMMARY_MIN_CHARS, Summary, SummaryRequest
from linkproc_ray.summarize.tags import MAX_EXISTING_TAGS, MAX_NEW_TAGS, TAG_MAX_CHARS, select_tags

SINGLE_SENTENCE_MIN_CHARS = 60
"""A one-sentence summary is accepted only from this length (see ``validate_output``)."""

SUMMARY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "summary": {"type": "string", "minLength": SUMMARY_MIN_CHARS, "maxLength": SUMMARY_MAX_CHARS},
        "tags": {
            "type": "array",
            "maxItems": MAX_EXISTING_TAGS + MAX_NEW_TAGS,
            "items": {"type": "string", "minLength": 1, "maxLength": TAG_MAX_CHARS},
        },
    },
    "required": ["summary", "tags"],
    "additionalProperties": False,
}
"""JSON schema of ``{summary, tags}``, bounded, for guided decoding (vLLM/xgrammar honours every keyword).

The bounds make an answer that is cut at ``max_tokens`` impossible once
``max_tokens`` covers the longest answer the schema allows (:data:`MAX_ANSWER_TOKENS`).
"""

WORST_TOKENS_PER_CHAR = 6
"""The most tokens one character of a JSON string can cost: written raw, its UTF-8 bytes
(3 in the BMP); written as a ``\\uXXXX`` escape, which guided decoding allows, six
ASCII characters, each at worst one token."""

LONGEST_ANSWER = json.dumps(
    {"summary": "x" * SUMMARY_MAX_CHARS, "tags": ["x" * TAG_MAX_CHARS] * (MAX_EXISTING_TAGS + MAX_NEW_TAGS)},
    separators=(",", ":"),
)
"""The longest answer :data:`SUMMARY_SCHEMA` allows, as the compact JSON guided decoding writes."""

MAX_ANSWER_TOKENS = len(LONGEST_ANSWER) * WORST_TOKENS_PER_CHAR + 1
"""``max_tokens`` that always fits a valid answer (plus the end token), so none is cut short.

A model that writes well needs a tenth of it; the bound only keeps a weak one
from being cut mid-string. (Guided decoding cannot also keep a summary from
opening with ``{``: xgrammar ignores string lengths beside a ``pattern``, and a
pattern that carries the lengths took 56 s to compile; the rules refuse it.)
"""


STRICT_SUMMARY_SCHEMA: dict[str, Any] = {
    **SUMMARY_SCHEMA,
    "properties": {
        "summary": {"type": "string"},
        "tags": {"type": "array", "maxItems": MAX_EXISTING_TAGS + MAX_NEW_TAGS, "items": {"type": "string"}},
    },
}
"""The same schema within OpenAI strict mode, which refuses ``minLength``/``maxLength`` but takes
``maxItems``; lengths are checked afterwards by :func:`validate_output`, as for every backend."""


# One split point: a terminator, optional closing quotes/brackets, whitespace,
# then a character that can start a sentence. CJK terminators need no space.
_SENTENCE_BREAK = re.compile(r"(?<=[.!?…])[\"'”’»)\]]*\s+(?=[^\s\da-z])|(?<=[。！？])(?![。！？」』）”])\s*|\n+")
_ABBREVIATION = re.compile(
    r"(?:\b(?:mr|mrs|ms|dr|prof|st|vs|etc|e\.g|i\.e|inc|ltd|jr|sr|fig|approx|dept|gen|gov|sen|rep)"
    r"|(?:^|[\s.])\w)\.$",
    re.IGNORECASE,
)


def split_sentences(text: str) -> list[str]:
    """Split ``text`` into sentences on . ! ? … 。！？ and newlines, sparing common abbreviations.

    The single definition of "sentence" used both to count a summary's
    sentences and to pick sentences for the extractive summarizer.
    """
    sentences: list[str] = []
    pending = ""
    start = 0
    for match in _SENTENCE_BREAK.finditer(text):
        piece = text[start : match.start()]
        start = match.end()
        if "\n" not in match.group(0) and _ABBREVIATION.search(piece):
            pending += piece + " "
            continue
        sentence = (pending + piece).strip()
        pending = ""
        if sentence:
            sentences.append(sentence)
    tail = (pending + text[start:]).strip()
    if tail:
        sentences.append(tail)
    return sentences


# Preambles are stripped rather than rejected: the summary after them is
# usually fine, and rejecting would cost a fallback for a cosmetic fault.
_PREAMBLE = re.compile(
    r"^\s*(?:"
    r"(?:sure|certainly|of course|okay|ok|absolutely)\s*[,!.:]"
    r"|here(?:'s|’s| is| are)\b[^:\n]{0,60}?\b(?:summary|summaries|overview|tl;?dr)\b[^:\n]{0,40}?[:.]"
    r"|(?:summary|tl;?dr|résumé|zusammenfassung|resumen)\s*[:\-–—]"
    r"|(?:the|this)\s+(?:page|article)\s+summary\s*[:\-–—]"
    r")\s*",
    re.IGNORECASE,
)
_CODE_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL | re.IGNORECASE)
_WRAPPING_QUOTES = (('"', '"'), ("“", "”"), ("'", "'"), ("«", "»"))


def _parse(raw: str | dict[str, Any]) -> tuple[str, list[str]]:
    if isinstance(raw, str):
        fenced = _CODE_FENCE.match(raw)
        try:
            # strict=False: xgrammar's length-bounded strings admit raw control
            # characters (a tab), which strict JSON forbids; they are whitespace here.
            raw = json.loads(fenced.group(1) if fenced else raw, strict=False)
        except json.JSONDecodeError as exc:
            raise AIInvalidOutput(f"output is not JSON: {exc.msg}") from exc
    if not isinstance(raw, dict):
        raise AIInvalidOutput("output is not a JSON object")
    summary, tags = raw.get("summary"), raw.get("tags")
    if not isinstance(summary, str):
        raise AIInvalidOutput("output has no string 'summary'")
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise AIInvalidOutput("output has no list of strings 'tags'")
    return summary, tags


def _unwrap_nested(summary: str) -> str:
    """A small model under guided decoding sometimes writes the whole answer again inside
    the summary string; a complete inner one is kept (as a preamble is stripped), a cut one is not."""
    if not summary.startswith("{"):
        return summary
    try:
        nested = json.loads(summary, strict=False)
    except json.JSONDecodeError:
        return summary
    inner = nested.get("summary") if isinstance(nested, dict) else None
    return inner if isinstance(inner, str) else summary


def _clean_summary(summary: str) -> str:
    summary = _unwrap_nested(" ".join(summary.split()))
    while True:
        stripped = _PREAMBLE.sub("", summary, count=1).strip()
        for left, right in _WRAPPING_QUOTES:
            inner = stripped[1:-1]
            # Only a quote around the whole text: '"A" and "B"' is not wrapped.
            if stripped[:1] == left and stripped[-1:] == right and left not in inner and right not in inner:
                stripped = inner.strip()
        if stripped == summary:
            return summary
        summary = stripped


def _check_summary(summary: str) -> None:
    if not SUMMARY_MIN_CHARS <= len(summary) <= SUMMARY_MAX_CHARS:
        raise AIInvalidOutput(f"summary is {len(summary)} characters, not {SUMMARY_MIN_CHARS}-{SUMMARY_MAX_CHARS}")
    if summary[0] in "{[":
        raise AIInvalidOutput("summary starts with '{' or '[' (nested JSON or a list)")
    if neutralize(summary) != summary:
        raise AIInvalidOutput("summary contains a prompt-boundary token")
    sentences = split_sentences(summary)
    if len(sentences) > 3:
        raise AIInvalidOutput(f"summary has {len(sentences)} sentences, not 2-3")
    if len(sentences) == 1 and len(summary) < SINGLE_SENTENCE_MIN_CHARS:
        raise AIInvalidOutput(f"a one-sentence summary needs at least {SINGLE_SENTENCE_MIN_CHARS} characters")
    if addresses_model(summary):
        raise AIInvalidOutput("summary reads as an instruction to a model (page injection)")
    if echoes_instructions(summary):
        raise AIInvalidOutput("summary repeats the prompt's instructions instead of describing the page")


def validate_output(raw: str | dict[str, Any], request: SummaryRequest, model: str) -> Summary:
    """Check a model's ``{summary, tags}`` against the rules; raise ``AIInvalidOutput`` if it fails.

    Summary: whitespace collapsed; a complete summary nested in it as JSON
    is taken out; a known preamble ("Sure,", "Here is a summary:",
    "Summary:") and wrapping quotes are stripped; then it must be
    10-600 characters, not start with "{" or "[", hold no boundary token,
    not read as an instruction to a model, not repeat the prompt's own
    instructions, and have 2-3 sentences, or 1
    sentence of at least 60 characters. Tags: sanitized, matched to the
    org's existing tags, deduplicated, none the link already has, at most 2
    existing plus 1 new; unusable or surplus tags are dropped, not fatal.
    """
    summary, tags = _parse(raw)
    summary = _clean_summary(summary)
    _check_summary(summary)
    return Summary(summary=summary, tags=select_tags(tags, request), model=model)
