"""Tag choice: model-proposed tags sanitized and matched to the org's existing ones."""

from __future__ import annotations

import difflib
import re
import unicodedata

from linkproc_ray.summarize.protocol import SummaryRequest

TAG_MAX_CHARS = 16
MAX_EXISTING_TAGS = 2
MAX_NEW_TAGS = 1

_FUZZY_CUTOFF = 0.85
_FUZZY_MIN_CHARS = 5


def sanitize_tag(name: str) -> str:
    """Lowercase ``name``, turn whitespace runs into "-", keep only letters, digits and "-".

    Returns "" when nothing is left; the result may exceed ``TAG_MAX_CHARS``.
    """
    name = unicodedata.normalize("NFKC", name).strip().lower()
    name = re.sub(r"[\s_]+", "-", name)
    name = "".join(c for c in name if c == "-" or c.isalnum())
    return re.sub(r"-{2,}", "-", name).strip("-")


def _fuzzy_key(name: str) -> str:
    return name.replace("-", "")


def _match_existing(tag: str, existing: dict[str, str]) -> str | None:
    """The existing tag ``tag`` means, by hyphen-blind equality or close spelling.

    Short names match only exactly: "ai" and "api" are different topics.
    """
    key = _fuzzy_key(tag)
    if key in existing:
        return existing[key]
    if len(key) < _FUZZY_MIN_CHARS:
        return None
    candidates = [k for k in existing if len(k) >= _FUZZY_MIN_CHARS]
    close = difflib.get_close_matches(key, candidates, n=1, cutoff=_FUZZY_CUTOFF)
    return existing[close[0]] if close else None


def select_tags(proposed: list[str], request: SummaryRequest) -> tuple[str, ...]:
    existing: dict[str, str] = {}
    for name in request.existing_tags:
        clean = sanitize_tag(name)
        if clean and len(clean) <= TAG_MAX_CHARS:
            existing.setdefault(_fuzzy_key(clean), clean)
    owned: dict[str, str] = {}
    for name in request.link_tags:
        clean = sanitize_tag(name)
        if clean:
            owned.setdefault(_fuzzy_key(clean), clean)
    owned_names = set(owned.values())

    chosen: list[str] = []
    reused = new = 0
    for name in proposed:
        tag = sanitize_tag(name)
        if not 1 <= len(tag) <= TAG_MAX_CHARS:
            continue
        match = _match_existing(tag, existing)
        if match is not None:
            tag = match
        if tag in chosen or tag in owned_names or _match_existing(tag, owned) is not None:
            continue
        if match is not None and reused < MAX_EXISTING_TAGS:
            reused += 1
            chosen.append(tag)
        elif match is None and new < MAX_NEW_TAGS:
            new += 1
            chosen.append(tag)
    return tuple(chosen)
