"""The default summarizer: TextRank over the page's own sentences, CPU only, no model files.

Deterministic (same request, byte-identical summary) so that a replayed log
or a second replica produces the same event; language-agnostic by design.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from linkproc_ray.errors import AIInvalidOutput
from linkproc_ray.summarize.boundary import addresses_model, neutralize
from linkproc_ray.summarize.prompt import MAX_INPUT_CHARS
from linkproc_ray.summarize.protocol import SUMMARY_MAX_CHARS, Summary, SummaryRequest
from linkproc_ray.summarize.rules import split_sentences, validate_output

_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_KANA = "\u3040-\u30ff\u31f0-\u31ff"
_HANGUL = "\uac00-\ud7af"
_CJK = _HAN + _KANA + _HANGUL
# CJK writes words without spaces: its runs become character bigrams, other
# scripts split on \w boundaries.
_TOKEN = re.compile(rf"[{_CJK}]+|[^\W_{_CJK}]+")
_CJK_CHAR = re.compile(rf"[{_CJK}]")
_HAN_RUN = re.compile(rf"[{_HAN}]{{2,}}")
_KATAKANA_RUN = re.compile(r"[\u30a0-\u30ff]{3,}")
_TERMINATED = re.compile(r"[.!?…。！？][\"'”’»)\]」』]*$")
_LEADING_BULLET = re.compile(r"^[\s\-–—•*·▪►#>]+")
_CJK_TERMINATOR = "。！？"

_MAX_SENTENCES = 60
"""Ranking is quadratic in sentences; 4,000 characters of prose hold about 30-40."""
_DAMPING = 0.85
_MAX_ITERATIONS = 60
_TOLERANCE = 1e-6
"""L1 change at which PageRank stops; ranks are settled far earlier than their last digits."""
_REDUNDANT = 0.6
"""Cosine above which a sentence repeats one already chosen."""
_ENOUGH_CHARS = 260
"""A third sentence is added only while the summary is shorter than this."""

# Tags only: similarity weights come from document statistics (idf), but a
# frequent function word is never a topic. Words of 3+ letters from the
# languages seen most on the web, plus web boilerplate.
_NOT_TAGS = frozenset(
    """
    the and for are but not you all any can had her was one our out has him his how its may new now
    old see two way who did get she too use that with have this will your from they been were said
    each which their there what about would make like into than them then these some could other
    more also when after first most over such only just very where while should those being here
    because does doing during before between both under again further once why own same until
    les des une est pas pour que qui dans sur par avec son ses aux mais plus ont été cette comme
    sont elle être tout nous vous leur fait peut aussi entre sans ces même très bien dont
    der die das und ist nicht ein eine mit den dem des sich auf für von als auch bei nach wie
    aus noch wird sind einen einer oder hat war werden kann nur über wenn aber zum zur vom
    los las del por con una para que como más pero sus fue han este esta son entre sin sobre
    también muy hay desde todo nos ser está cuando
    che non per una sono della delle degli alla anche come più con dei nel
    não uma por com para mais como dos das foi são pelo pela
    het een van dat niet zijn voor met ook maar bij nog wel
    что это как так его для все она они или уже был была были при только если когда
    также может есть еще даже чтобы этот эти этого тем них вот каждый раз очень себя свой более
    durch wurde wurden zwischen haben hatte seine ihre diese dieser dieses einem unter gegen
    jan feb mar apr jun jul aug sep sept oct nov dec end
    http https www com html click share comments comment read more copyright
    """.split()
)


@dataclass(frozen=True)
class _Sentence:
    text: str
    position: int
    terms: Counter[str]


def _terms(text: str) -> list[str]:
    """Index terms of ``text``: casefolded words, or character bigrams for CJK runs."""
    terms: list[str] = []
    for token in _TOKEN.findall(text.casefold()):
        if _CJK_CHAR.match(token):
            terms.extend(token[i : i + 2] for i in range(max(1, len(token) - 1)))
        elif not token.isdigit():
            terms.append(token)
    return terms


def _is_cjk(text: str) -> bool:
    return len(_CJK_CHAR.findall(text)) * 3 > len(text)


def _usable(sentence: str) -> bool:
    """A sentence fit to quote: terminated, of sensible size, mostly letters, not an injection."""
    if not _TERMINATED.search(sentence) or sentence[0] in "{[":
        return False
    cjk = _is_cjk(sentence)
    if not (10 if cjk else 25) <= len(sentence) <= 280:
        return False
    if not cjk and len(_TOKEN.findall(sentence)) < 4:
        return False
    if sum(c.isalpha() for c in sentence) < len(sentence) / 2:
        return False
    return neutralize(sentence) == sentence and not addresses_model(sentence)


def _candidates(text: str, *, loose: bool = False) -> list[_Sentence]:
    """Usable sentences of ``text``; ``loose`` also takes unterminated lines (lists, captions)."""
    seen: set[str] = set()
    sentences: list[_Sentence] = []
    for raw in split_sentences(text):
        sentence = " ".join(_LEADING_BULLET.sub("", raw).split())
        if loose and sentence and not _TERMINATED.search(sentence):
            sentence = sentence.rstrip(",;:-–—") + "."
        if sentence in seen or not sentence or not _usable(sentence):
            continue
        seen.add(sentence)
        sentences.append(_Sentence(sentence, len(sentences), Counter(_terms(sentence))))
    return sentences


def _weights(sentences: list[_Sentence]) -> list[dict[str, float]]:
    """TF-IDF vectors; idf from this page alone, so its own function words weigh least."""
    df: Counter[str] = Counter()
    for sentence in sentences:
        df.update(sentence.terms.keys())
    n = len(sentences)
    vectors: list[dict[str, float]] = []
    for sentence in sentences:
        vector = {t: (1 + math.log(c)) * math.log((n + 1) / df[t]) for t, c in sentence.terms.items()}
        norm = math.sqrt(sum(w * w for w in vector.values()))
        vectors.append({t: w / norm for t, w in vector.items()} if norm else {})
    return vectors


def _cosine(a: dict[str, float], b: dict[str, float]) -> float:
    if len(a) > len(b):
        a, b = b, a
    return sum(w * b[t] for t, w in a.items() if t in b)


def _rank(sentences: list[_Sentence], vectors: list[dict[str, float]], title: str) -> list[float]:
    """PageRank over the sentence-similarity graph, teleporting towards the lead and the title."""
    n = len(sentences)
    title_terms = set(_terms(title))
    prior = [
        (1 + len(title_terms & s.terms.keys()) / (len(title_terms) or 1)) / math.sqrt(1 + s.position) for s in sentences
    ]
    total = sum(prior)
    prior = [p / total for p in prior]
    edges: list[list[tuple[int, float]]] = [[] for _ in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            weight = _cosine(vectors[i], vectors[j])
            if weight > 0:
                edges[i].append((j, weight))
                edges[j].append((i, weight))
    # Normalise each sentence's out-edges once, so an iteration is only multiply-adds.
    links: list[list[tuple[int, float]]] = []
    for row in edges:
        out = sum(w for _, w in row)
        links.append([(j, w / out) for j, w in row])
    score = prior[:]
    for _ in range(_MAX_ITERATIONS):
        dangling = sum(score[i] for i in range(n) if not links[i])
        nxt = [(1 - _DAMPING + _DAMPING * dangling) * p for p in prior]
        for i in range(n):
            share = _DAMPING * score[i]
            for j, weight in links[i]:
                nxt[j] += share * weight
        delta = sum(abs(a - b) for a, b in zip(nxt, score, strict=False))
        score = nxt
        if delta < _TOLERANCE:
            break
    return score


def _join(sentences: list[str]) -> str:
    text = ""
    for sentence in sentences:
        if text and text[-1] not in _CJK_TERMINATOR:
            text += " "
        text += sentence
    return text


def _pick(sentences: list[_Sentence], scores: list[float], vectors: list[dict[str, float]], most: int) -> str:
    """Best-ranked, non-redundant sentences within the length cap, in document order."""
    order = sorted(range(len(sentences)), key=lambda i: (-round(scores[i], 12), i))
    chosen: list[int] = []
    length = 0
    for i in order:
        if len(chosen) == most or (len(chosen) >= 2 and length >= _ENOUGH_CHARS):
            break
        size = len(sentences[i].text) + 1
        if length + size > SUMMARY_MAX_CHARS:
            continue
        if any(_cosine(vectors[i], vectors[j]) > _REDUNDANT for j in chosen):
            continue
        chosen.append(i)
        length += size
    return _join([sentences[i].text for i in sorted(chosen)])


def _ranked_drafts(sentences: list[_Sentence], title: str) -> Iterator[str]:
    """The best three, then the best two, of the first ``_MAX_SENTENCES`` sentences."""
    sentences = sentences[:_MAX_SENTENCES]
    vectors = _weights(sentences)
    scores = _rank(sentences, vectors, title)
    yield _pick(sentences, scores, vectors, 3)
    yield _pick(sentences, scores, vectors, 2)


def _tags(sentences: list[_Sentence], request: SummaryRequest) -> list[str]:
    """Salient terms, the org's existing tags found in the page first."""
    title = (request.title or "").casefold()
    body = " ".join(s.text for s in sentences).casefold()
    words = " " + " ".join(_TOKEN.findall(body)) + " "
    title_words = " " + " ".join(_TOKEN.findall(title)) + " "

    found: list[tuple[int, str]] = []
    for name in request.existing_tags:
        phrase = " " + " ".join(_TOKEN.findall(name.casefold())) + " "
        if phrase.strip():
            count = words.count(phrase) + 2 * (phrase in title_words)
            if count >= 2:
                found.append((count, name))

    counts: Counter[str] = Counter()
    for text, weight in ((body, 1), (title, 2)):
        for token in _TOKEN.findall(text):
            if _CJK_CHAR.match(token):
                terms = _KATAKANA_RUN.findall(token) + [
                    run[i : i + 2] if len(run) > 4 else run
                    for run in _HAN_RUN.findall(token)
                    for i in range(len(run) - 1 if len(run) > 4 else 1)
                ]
            elif len(token) >= 3 and not token.isdigit() and token not in _NOT_TAGS:
                terms = [token]
            else:
                continue
            for term in terms:
                counts[term] += weight
    salient = sorted((t for t, c in counts.items() if c >= 2), key=lambda t: (-counts[t], -len(t), t))
    if not salient:
        # Short pages (and inflected languages) repeat little: fall back to
        # capitalised words inside sentences (nouns, names), then the longest.
        named = {t.casefold() for s in sentences for t in _TOKEN.findall(s.text)[1:] if t[0].isupper()}
        salient = sorted(
            (t for t in counts if len(t) <= 16),
            key=lambda t: (t not in named, -len(t), t),
        )
    ranked = [name for _, name in sorted(found, key=lambda f: (-f[0], f[1]))]
    return ranked + salient[:8]


def _metadata_sentences(text: str) -> list[str]:
    """Sentences of a meta description, which is often cut short or left unterminated."""
    sentences: list[str] = []
    for raw in split_sentences(text):
        sentence = " ".join(_LEADING_BULLET.sub("", raw).split()).rstrip(" .…,;:-–—")
        if sentence and neutralize(sentence) == sentence and not addresses_model(sentence):
            sentences.append(sentence if _TERMINATED.search(sentence) else sentence + ".")
    return sentences


class ExtractiveSummarizer:
    """TextRank summarizer: 2-3 of the page's own sentences in document order, plus salient tags.

    Reads at most ``MAX_INPUT_CHARS`` of text; sentences that address a model
    (prompt-injection shape) or carry boundary tokens are never quoted. Falls
    back to the description and title when the text has too little; raises
    ``AIInvalidOutput`` when nothing passes ``validate_output``.
    """

    model = "extractive-textrank-v1"

    async def summarize(self, request: SummaryRequest) -> Summary:
        """Same as ``summarize_sync``; fast enough (milliseconds) to run on the event loop."""
        return self.summarize_sync(request)

    def summarize_sync(self, request: SummaryRequest) -> Summary:
        """A validated summary of ``request``; the same request always gives the same summary."""
        text = request.text[:MAX_INPUT_CHARS]
        strict = _candidates(text)
        tags = _tags(strict or _candidates(text, loose=True), request)
        for summary in self._drafts(text, strict, request):
            try:
                return validate_output({"summary": summary, "tags": tags}, request, self.model)
            except AIInvalidOutput:
                continue
        raise AIInvalidOutput("page has no text, description or title to summarize")

    def _drafts(self, text: str, strict: list[_Sentence], request: SummaryRequest) -> Iterator[str]:
        """Summaries to try, best first; the first that validates wins."""
        if strict:
            yield from _ranked_drafts(strict, request.title or "")
        # Lists and captions without full stops are a last resort from the text.
        loose = _candidates(text, loose=True)
        if len(loose) > len(strict):
            yield from _ranked_drafts(loose, request.title or "")
        sentences = strict or loose
        described = _metadata_sentences(request.description or "")[:3]
        if described:
            yield _join(described)
        title = " ".join((request.title or "").split())
        if title:
            headline = title if _TERMINATED.search(title) else title + "."
            yield _join([headline, *described[:2]])
            if sentences:
                yield _join([headline, sentences[0].text])
