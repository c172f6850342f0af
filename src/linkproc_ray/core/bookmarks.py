"""Bookmark files in and out: Netscape bookmark HTML, plain lists of URLs, and this project's JSON export.

Every browser, Pocket, Raindrop, Karakeep and Linkwarden export the Netscape
format; reading it is forgiving (broken markup, odd encodings), because a
user's years of bookmarks must not be refused for one bad tag. Nothing is
judged here: each entry keeps its place in the file, and the server decides
its outcome (created, exists, duplicate or invalid).
"""

from __future__ import annotations

import codecs
import html
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Final

from linkproc_ray.core.types import JSON

MAX_TAG_LENGTH: Final = 64
"""Characters of a tag name (``v1.TagCreated``)."""

_META_CHARSET: Final = re.compile(rb"""<meta[^>]*?charset\s*=\s*["']?\s*([a-zA-Z0-9_:.+-]+)""", re.IGNORECASE)
_LOOKS_LIKE_HTML: Final = re.compile(r"<!doctype\s|<html[\s>]|<body[\s>]|<a\s[^>]*href\s*=|<dl[\s>]", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Entry:
    """One bookmark as the file gives it: ``position`` is its 1-based place among the file's entries."""

    position: int
    url: str
    title: str | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class BookmarkFile:
    """What a file held: its entries in order, the format and encoding it was read as."""

    format: str
    encoding: str
    entries: list[Entry]


def decode(data: bytes) -> tuple[str, str]:
    """The file as text and the codec used: BOM, then a ``<meta charset>``, then UTF-8, then detection.

    Browsers write UTF-8, but old exports come in windows-1252 or Shift-JIS;
    the last resort replaces undecodable bytes rather than refusing the file.
    """
    for bom, name in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            return data.decode(name, errors="replace").lstrip("\ufeff"), name
    match = _META_CHARSET.search(data[:4096])
    labels = [match.group(1).decode("ascii") if match else None, "utf-8"]
    for label in labels:
        if label is None:
            continue
        try:
            codec = codecs.lookup(label).name
            return data.decode(codec), codec
        except (LookupError, UnicodeDecodeError):
            continue
    # Imported here: the backend actor uses this module's types, never the detector (a few MB it need not load).
    import charset_normalizer

    best = charset_normalizer.from_bytes(data).best()
    codec = best.encoding if best is not None else "cp1252"
    return data.decode(codec, errors="replace"), codec


def read_bookmarks(data: bytes) -> BookmarkFile:
    """Entries of a Netscape bookmark file, a JSON export of this project, or a text file of URLs."""
    text, encoding = decode(data)
    stripped = text.lstrip()
    if stripped.startswith("{"):
        exported = _read_json_export(stripped)
        if exported is not None:
            return BookmarkFile("json", encoding, exported)
    if _LOOKS_LIKE_HTML.search(text):
        return BookmarkFile("netscape", encoding, read_netscape(text))
    return BookmarkFile("text", encoding, read_url_list(text))


def read_url_list(text: str) -> list[Entry]:
    """One URL per line (the first word of it); blank lines and ``#`` comments are skipped."""
    entries: list[Entry] = []
    for line in text.splitlines():
        words = line.split()
        if words and not words[0].startswith("#"):
            entries.append(Entry(position=len(entries) + 1, url=words[0]))
    return entries


def read_netscape(text: str) -> list[Entry]:
    """Every ``<A HREF>`` of a Netscape bookmark file; its folders and ``TAGS`` become its tags."""
    parser = _NetscapeParser()
    parser.feed(text)
    parser.close()
    parser.finish_anchor()
    return parser.entries


def tag_name(raw: str) -> str | None:
    """A folder or tag as a tag name: whitespace collapsed, at most 64 characters; ``None`` if nothing is left."""
    name = " ".join(raw.split())[:MAX_TAG_LENGTH].strip()
    return name or None


def unique_tags(names: Iterable[str]) -> tuple[str, ...]:
    """Tag names cleaned and each kept once, in first-seen order."""
    seen: dict[str, None] = {}
    for raw in names:
        name = tag_name(raw)
        if name is not None:
            seen.setdefault(name, None)
    return tuple(seen)


class _NetscapeParser(HTMLParser):
    """A tolerant reader of the ``<DL><DT><H3>folder</H3><DL>…</DL>`` tree: unclosed tags do no harm."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.entries: list[Entry] = []
        self._folders: list[str | None] = []
        self._heading: list[str] | None = None
        self._next_folder: str | None = None
        self._toolbar = False
        self._anchor: tuple[str, list[str], list[str]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name.lower(): value or "" for name, value in attrs}
        if tag == "a":
            self.finish_anchor()
            tags = [t for t in values.get("tags", "").split(",") if t.strip()]
            self._anchor = (values.get("href", "").strip(), tags, [])
        elif tag == "h3":
            self.finish_anchor()
            self._heading = []
            # The bookmarks bar is where a browser keeps everything: not a topic.
            self._toolbar = values.get("personal_toolbar_folder", "").lower() == "true"
        elif tag == "dl":
            self.finish_anchor()
            self._finish_heading()
            self._folders.append(self._next_folder)
            self._next_folder = None

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self.finish_anchor()
        elif tag == "h3":
            self._finish_heading()
        elif tag == "dl" and self._folders:
            self.finish_anchor()
            self._folders.pop()

    def handle_data(self, data: str) -> None:
        if self._anchor is not None:
            self._anchor[2].append(data)
        elif self._heading is not None:
            self._heading.append(data)

    def _finish_heading(self) -> None:
        """End the open ``<H3>``: its name is the folder of the ``<DL>`` that follows (``</H3>`` may be missing)."""
        if self._heading is None:
            return
        name = tag_name("".join(self._heading))
        self._next_folder = None if self._toolbar else name
        self._heading = None

    def finish_anchor(self) -> None:
        """End the open ``<A>``: its closing tag may be missing in a broken file."""
        if self._anchor is None:
            return
        href, tags, title = self._anchor
        self._anchor = None
        folders = [f for f in self._folders if f is not None]
        self.entries.append(
            Entry(
                position=len(self.entries) + 1,
                url=href,
                title=tag_name("".join(title)) if "".join(title).strip() else None,
                tags=unique_tags([*folders, *tags]),
            )
        )


def _read_json_export(text: str) -> list[Entry] | None:
    """Entries of :func:`write_json`'s output; ``None`` if the text is not such a document."""
    try:
        document = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return None
    links = document.get("links") if isinstance(document, dict) else None
    if not isinstance(links, list):
        return None
    entries: list[Entry] = []
    for item in links:
        url = item.get("url") if isinstance(item, dict) else None
        raw_tags = item.get("tags") if isinstance(item, dict) else None
        tags = unique_tags(t for t in raw_tags if isinstance(t, str)) if isinstance(raw_tags, list) else ()
        title = ((item.get("metadata") or {}).get("title") if isinstance(item, dict) else None) or None
        entries.append(
            Entry(
                position=len(entries) + 1,
                url=url if isinstance(url, str) else "",
                title=title if isinstance(title, str) else None,
                tags=tags,
            )
        )
    return entries


# -- writing ------------------------------------------------------------------


def write_netscape(links: Sequence[JSON]) -> str:
    """The org's links as a Netscape bookmark file any browser or bookmark service imports.

    Tags travel in the ``TAGS`` attribute (as Pocket and Linkwarden write it), the
    summary as the entry's ``<DD>`` description.
    """
    lines = [
        "<!DOCTYPE NETSCAPE-Bookmark-file-1>",
        "<!-- This is an automatically generated file. It will be read and overwritten. DO NOT EDIT! -->",
        '<META HTTP-EQUIV="Content-Type" CONTENT="text/html; charset=UTF-8">',
        "<TITLE>Bookmarks</TITLE>",
        "<H1>Bookmarks</H1>",
        "<DL><p>",
    ]
    for link in links:
        title = (link.get("metadata") or {}).get("title") or link["url"]
        attrs = f'HREF="{html.escape(link["url"])}"'
        if link.get("tags"):
            attrs += f' TAGS="{html.escape(",".join(link["tags"]))}"'
        lines.append(f"    <DT><A {attrs}>{html.escape(title)}</A>")
        summary = (link.get("summary") or {}).get("text")
        if summary:
            lines.append(f"    <DD>{html.escape(summary)}")
    lines.append("</DL><p>")
    return "\n".join(lines) + "\n"


def write_json(org: str, exported_at: str, links: Sequence[JSON]) -> str:
    """The org's links with everything known of them (metadata, summary, tags, processing status)."""
    document = {"format": "linkproc-export", "version": 1, "org": org, "exportedAt": exported_at, "links": list(links)}
    return json.dumps(document, ensure_ascii=False, indent=1) + "\n"


@dataclass(frozen=True, slots=True)
class NewBookmark:
    """One valid entry of an import, ready to save: a canonical URL, its domain and tag names."""

    url: str
    domain: str
    tags: tuple[str, ...] = ()
    source: str | None = None
