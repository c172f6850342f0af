"""Reading and writing bookmark files: what browsers and bookmark services export, broken or not."""

from __future__ import annotations

import json

from linkproc_ray.core.bookmarks import Entry, read_bookmarks, write_json, write_netscape

FIREFOX_EXPORT = """<!DOCTYPE NETSCAPE-Bookmark-file-1>
<!-- This is an automatically generated file. -->
<META HTTP-EQUIV="Content-Type" CONTENT="text/html; charset=UTF-8">
<TITLE>Bookmarks</TITLE>
<H1>Bookmarks Menu</H1>
<DL><p>
    <DT><H3 ADD_DATE="1" PERSONAL_TOOLBAR_FOLDER="true">Bookmarks Toolbar</H3>
    <DL><p>
        <DT><A HREF="https://toolbar.example/" ADD_DATE="1">On the toolbar</A>
    </DL><p>
    <DT><H3>Programming</H3>
    <DL><p>
        <DT><H3>Rust</H3>
        <DL><p>
            <DT><A HREF="https://blog.example/rust-async" TAGS="async,reading">Async Rust &amp; you</A>
        </DL><p>
        <DT><A HREF="https://python.example/">Python</A>
    </DL><p>
    <DT><A HREF="https://top.example/">Top level</A>
</DL><p>
"""


def test_folders_become_tags_and_the_toolbar_is_not_one():
    found = read_bookmarks(FIREFOX_EXPORT.encode())
    assert found.format == "netscape"
    assert found.entries == [
        Entry(1, "https://toolbar.example/", "On the toolbar", ()),
        Entry(2, "https://blog.example/rust-async", "Async Rust & you", ("Programming", "Rust", "async", "reading")),
        Entry(3, "https://python.example/", "Python", ("Programming",)),
        Entry(4, "https://top.example/", "Top level", ()),
    ]


def test_broken_html_still_gives_every_link_it_holds():
    # Unclosed anchors and lists, a missing </DL>, attributes without quotes.
    broken = b"<DL><p><DT><H3>News<DL><DT><A HREF=https://a.example/>A<DT><A HREF='https://b.example/'>B</DL><DT><A HREF=\"https://c.example/\">C"
    found = read_bookmarks(broken)
    assert [(e.url, e.tags) for e in found.entries] == [
        ("https://a.example/", ("News",)),
        ("https://b.example/", ("News",)),
        ("https://c.example/", ()),
    ]


def test_javascript_and_file_entries_are_kept_for_the_server_to_answer():
    found = read_bookmarks(
        b'<DL><DT><A HREF="javascript:alert(1)">bookmarklet</A><DT><A HREF="file:///etc/passwd">f</A>'
    )
    assert [e.url for e in found.entries] == ["javascript:alert(1)", "file:///etc/passwd"]


def test_a_windows_1252_export_is_read_by_its_meta_charset():
    page = '<META CONTENT="text/html; charset=windows-1252"><DL><DT><H3>Café</H3><DL><DT><A HREF="https://x.example/">Crème</A>'
    found = read_bookmarks(page.encode("cp1252"))
    assert found.encoding == "cp1252"
    assert found.entries[0].title == "Crème" and found.entries[0].tags == ("Café",)


def test_a_shift_jis_list_without_any_declaration_is_detected():
    text = "https://jp.example/東京\nhttps://jp.example/大阪\n"
    found = read_bookmarks(text.encode("shift_jis"))
    assert [e.url for e in found.entries] == ["https://jp.example/東京", "https://jp.example/大阪"]


def test_a_utf16_file_with_its_bom_is_read():
    found = read_bookmarks("\ufeffhttps://a.example/é\n".encode("utf-16"))
    assert [e.url for e in found.entries] == ["https://a.example/é"]


def test_undecodable_bytes_are_replaced_not_refused():
    found = read_bookmarks(b"https://a.example/\xff\xfe\xfa ok\nhttps://b.example/\n")
    assert len(found.entries) == 2 and found.entries[1].url == "https://b.example/"


def test_a_text_list_skips_blank_lines_and_comments_and_keeps_each_line_s_first_word():
    found = read_bookmarks(b"# my links\n\nhttps://a.example/ the A site\n  https://b.example/\nnot a url\n")
    assert found.format == "text"
    assert [(e.position, e.url) for e in found.entries] == [
        (1, "https://a.example/"),
        (2, "https://b.example/"),
        (3, "not"),
    ]


def test_a_hundred_thousand_entries_are_read_in_order():
    text = "\n".join(f"https://many.example/{i}" for i in range(100_000))
    found = read_bookmarks(text.encode())
    assert len(found.entries) == 100_000
    assert found.entries[-1] == Entry(100_000, "https://many.example/99999")


def test_duplicate_urls_within_a_file_stay_separate_entries():
    found = read_bookmarks(b"https://a.example/\nhttps://a.example/\n")
    assert [e.position for e in found.entries] == [1, 2]


def link(url: str, title: str | None, tags: list[str], summary: str | None = None) -> dict:
    return {
        "url": url,
        "tags": tags,
        "metadata": None if title is None else {"title": title},
        "summary": None if summary is None else {"text": summary},
    }


def test_a_netscape_export_reads_back_as_the_same_links_and_tags():
    links = [
        link("https://a.example/?q=1&r=2", 'Quotes " and <tags>', ["rust", "async, io"]),
        link("https://b.example/", None, [], summary="It says <things>."),
    ]
    written = write_netscape(links)
    assert "<DD>It says &lt;things&gt;." in written
    found = read_bookmarks(written.encode())
    # A comma inside a tag name cannot survive TAGS="a,b": it splits, as every reader of the format does.
    assert [(e.url, e.title, e.tags) for e in found.entries] == [
        ("https://a.example/?q=1&r=2", 'Quotes " and <tags>', ("rust", "async", "io")),
        ("https://b.example/", "https://b.example/", ()),
    ]


def test_a_json_export_reads_back_as_the_same_links_and_tags():
    written = write_json("acme", "2026-01-01T00:00:00Z", [link("https://a.example/", "A", ["x", "y"])])
    assert json.loads(written)["org"] == "acme"
    found = read_bookmarks(written.encode())
    assert found.format == "json"
    assert found.entries == [Entry(1, "https://a.example/", "A", ("x", "y"))]
