"""extract_metadata: precedence independent of document order, clean text, safe absolute URLs."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.pages import article_ids, load_article

from linkproc_ray.pipeline.metadata import MAX_DESCRIPTION, MAX_TITLE, PageMetadata, extract_metadata

URL = "https://news.example/section/story.html?id=7"


def page(head: str, body: str = "") -> str:
    return f"<!doctype html><html><head>{head}</head><body>{body}</body></html>"


def json_ld(data: object) -> str:
    return f'<script type="application/ld+json">{json.dumps(data)}</script>'


TITLE = "<title>Plain title | Example News</title>"
OG = '<meta property="og:title" content="OpenGraph title">'
TWITTER = '<meta name="twitter:title" content="Twitter title">'
ARTICLE_LD = json_ld({"@context": "https://schema.org", "@type": "NewsArticle", "headline": "JSON-LD headline"})


@pytest.mark.parametrize(
    ("tags", "title"),
    [
        ([TITLE, OG], "OpenGraph title"),
        ([TITLE, TWITTER], "Twitter title"),
        ([OG, TWITTER], "OpenGraph title"),
        ([TITLE, OG, TWITTER, ARTICLE_LD], "JSON-LD headline"),
        ([TITLE], "Plain title | Example News"),
    ],
)
def test_title_precedence_is_the_same_in_both_document_orders(tags: list[str], title: str) -> None:
    forwards = extract_metadata(page("".join(tags)), URL)
    backwards = extract_metadata(page("".join(reversed(tags))), URL)

    assert forwards.title == backwards.title == title


@pytest.mark.parametrize(
    ("tags", "description"),
    [
        (['<meta name="description" content="Plain">', '<meta property="og:description" content="OG">'], "OG"),
        (['<meta name="description" content="Plain">', '<meta name="twitter:description" content="Card">'], "Card"),
        (['<meta name="description" content="Plain">'], "Plain"),
    ],
)
def test_description_precedence_is_the_same_in_both_document_orders(tags: list[str], description: str) -> None:
    forwards = extract_metadata(page("".join(tags)), URL)
    backwards = extract_metadata(page("".join(reversed(tags))), URL)

    assert forwards.description == backwards.description == description


def test_site_name_precedence_is_og_then_json_ld_publisher_then_application_name() -> None:
    publisher = json_ld(
        {"@type": "Article", "headline": "H", "publisher": {"@type": "Organization", "name": "Publisher"}}
    )
    app = '<meta name="application-name" content="App">'
    og = '<meta property="og:site_name" content="OG Site">'

    assert extract_metadata(page(app + publisher + og), URL).site_name == "OG Site"
    assert extract_metadata(page(og + publisher + app), URL).site_name == "OG Site"
    assert extract_metadata(page(app + publisher), URL).site_name == "Publisher"
    assert extract_metadata(page(publisher + app), URL).site_name == "Publisher"
    assert extract_metadata(page(app), URL).site_name == "App"


def test_json_ld_graph_yields_the_article_and_its_website() -> None:
    graph = {
        "@context": "https://schema.org",
        "@graph": [
            {"@type": "WebSite", "name": "Example News", "url": "https://news.example/"},
            {"@type": "WebPage", "name": "Page name", "url": URL},
            {
                "@type": ["BlogPosting"],
                "headline": "Graph headline",
                "description": "Graph description",
                "image": {"@type": "ImageObject", "url": "/img/lead.jpg"},
            },
        ],
    }

    metadata = extract_metadata(page(json_ld(graph)), URL)

    assert metadata.title == "Graph headline"
    assert metadata.description == "Graph description"
    assert metadata.image == "https://news.example/img/lead.jpg"
    assert metadata.site_name == "Example News"


def test_json_ld_lists_and_prefixed_types_are_understood() -> None:
    data = [
        {"@type": "BreadcrumbList"},
        {
            "@type": "http://schema.org/Article",
            "name": "Listed",
            "image": ["https://cdn.example/a.jpg", "https://cdn.example/b.jpg"],
        },
    ]

    metadata = extract_metadata(page(json_ld(data)), URL)

    assert (metadata.title, metadata.image) == ("Listed", "https://cdn.example/a.jpg")


def test_broken_json_ld_is_ignored() -> None:
    html = page('<script type="application/ld+json">{"@type": "Article", "headline": </script>' + TITLE)

    assert extract_metadata(html, URL).title == "Plain title | Example News"


def test_entities_are_decoded_and_whitespace_collapsed() -> None:
    html = page(
        "<title>\n  Fish &amp; Chips &#8211;\n\t a&nbsp;history </title>"
        + '<meta name="description" content="Tom &amp;amp; Jerry&#39;s\n   day">'
    )

    metadata = extract_metadata(html, URL)

    assert metadata.title == "Fish & Chips – a history"
    assert metadata.description == "Tom & Jerry's day"


def test_json_ld_text_has_its_entities_decoded() -> None:
    metadata = extract_metadata(page(json_ld({"@type": "Article", "headline": "It&#8217;s &quot;here&quot;"})), URL)

    assert metadata.title == 'It’s "here"'


def test_long_text_is_capped() -> None:
    html = page(f"<title>{'word ' * 200}</title><meta name=description content='{'x' * 5000}'>")

    metadata = extract_metadata(html, URL)

    assert metadata.title is not None and len(metadata.title) <= MAX_TITLE
    assert metadata.description is not None and len(metadata.description) == MAX_DESCRIPTION


@pytest.mark.parametrize(
    ("href", "resolved"),
    [
        ("/img/a.png", "https://news.example/img/a.png"),
        ("img/a.png", "https://news.example/section/img/a.png"),
        ("../a.png", "https://news.example/a.png"),
        ("//cdn.example/a.png", "https://cdn.example/a.png"),
        ("http://cdn.example/a.png", "http://cdn.example/a.png"),
        ("  https://cdn.example/a b.png  ", "https://cdn.example/a%20b.png"),
        ("https://cdn.example/a.png?w=1&amp;h=2", "https://cdn.example/a.png?w=1&h=2"),
    ],
)
def test_image_urls_are_resolved_against_the_page_url(href: str, resolved: str) -> None:
    html = page(f'<meta property="og:image" content="{href}">')

    assert extract_metadata(html, URL).image == resolved


@pytest.mark.parametrize(
    "href",
    [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "data:image/png;base64,AAAA",
        "ftp://cdn.example/a.png",
        "file:///etc/passwd",
        "https://cdn.example/" + "a" * 2100,
    ],
)
def test_non_http_or_overlong_urls_are_dropped(href: str) -> None:
    html = page(
        f'<meta property="og:image" content="{href}"><link rel="icon" href="{href}">'
        f'<link rel="canonical" href="{href}">'
    )

    metadata = extract_metadata(html, URL)

    assert metadata.image is None
    assert metadata.canonical_url is None
    assert metadata.favicon == "https://news.example/favicon.ico"


def test_a_dropped_image_falls_through_to_the_next_source() -> None:
    html = page('<meta property="og:image" content="javascript:x"><meta name="twitter:image" content="/card.png">')

    assert extract_metadata(html, URL).image == "https://news.example/card.png"


@pytest.mark.parametrize(
    ("links", "favicon"),
    [
        ('<link rel="icon" href="/i.png"><link rel="apple-touch-icon" href="/t.png">', "https://news.example/i.png"),
        ('<link rel="apple-touch-icon" href="/t.png"><link rel="icon" href="/i.png">', "https://news.example/i.png"),
        ('<link rel="shortcut icon" href="/s.ico">', "https://news.example/s.ico"),
        ('<link rel="apple-touch-icon" href="/t.png">', "https://news.example/t.png"),
        ('<link rel="stylesheet" href="/s.css">', "https://news.example/favicon.ico"),
        ("", "https://news.example/favicon.ico"),
    ],
)
def test_favicon_prefers_icon_then_touch_icon_then_favicon_ico(links: str, favicon: str) -> None:
    assert extract_metadata(page(links), URL).favicon == favicon


def test_canonical_prefers_link_rel_over_og_url_in_both_orders() -> None:
    link = '<link rel="canonical" href="/story">'
    og = '<meta property="og:url" content="https://news.example/og-story">'

    assert extract_metadata(page(link + og), URL).canonical_url == "https://news.example/story"
    assert extract_metadata(page(og + link), URL).canonical_url == "https://news.example/story"
    assert extract_metadata(page(og), URL).canonical_url == "https://news.example/og-story"


def test_h1_is_the_last_resort_title() -> None:
    assert extract_metadata(page("", "<h1> Only a heading </h1>"), URL).title == "Only a heading"


def test_page_without_metadata_has_only_the_favicon_fallback() -> None:
    assert extract_metadata(page(""), URL) == PageMetadata(favicon="https://news.example/favicon.ico")


@pytest.mark.parametrize(
    "html",
    [
        "",
        "\x00\x01\x02",
        "<",
        "<html><head><title>unclosed",
        "<meta property=og:title content>",
        "<meta>" * 1000,
        "<div>" * 5000 + "deep",
        '<script type="application/ld+json">' + "[" * 100_000 + "</script>",
        '<script type="application/ld+json">{"@graph": {"@graph": {"@graph": null}}}</script>',
        '<script type="application/ld+json">{"@type": 5, "headline": ["x", 1], "image": {"url": 3}, "publisher": [null]}</script>',
        "<link rel=icon><link href=/x rel>",
        "<title>" + "&#x110000;&#0;&#xD800;" + "</title>",
    ],
)
def test_hostile_or_broken_html_never_raises(html: str) -> None:
    assert isinstance(extract_metadata(html, URL), PageMetadata)


MARKUP_PIECES = list("<>/=\"' &#;:!-x{}[]@,\n") + [
    "<meta ",
    "property=og:title",
    "content=",
    "<title>",
    "</title>",
    '<script type="application/ld+json">',
    "</script>",
    '"@type"',
    '"@graph"',
    '"Article"',
    "<link rel=icon href=",
    "javascript:",
    "//",
    "&amp;",
    "&#",
]


@settings(max_examples=75, deadline=None)
@given(st.lists(st.sampled_from(MARKUP_PIECES), max_size=80).map("".join))
def test_random_markup_never_raises(html: str) -> None:
    assert isinstance(extract_metadata(html, URL), PageMetadata)


def test_every_dataset_page_gets_a_title_and_http_urls() -> None:
    missing = []
    for page_id in article_ids():
        html, url, _ = load_article(page_id)
        metadata = extract_metadata(html, url)
        if not metadata.title:
            missing.append(page_id)
        for link in (metadata.image, metadata.favicon, metadata.canonical_url):
            assert link is None or link.startswith(("http://", "https://")), (page_id, link)

    assert missing == []
