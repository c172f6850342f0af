"""parse_page: one picklable call from HTML to metadata and text, as Ray tasks need."""

from __future__ import annotations

import pickle

from tests.pages import article_ids, load_article

from linkproc_ray.pipeline.parse import ParsedPage, parse_page


def test_a_dataset_page_parses_into_metadata_and_text() -> None:
    html, url, article_body = load_article(article_ids()[0])

    parsed = parse_page(html, url)

    assert parsed.metadata.title
    assert parsed.text is not None
    assert parsed.text.split()[:8] == article_body.split()[:8]


def test_function_and_result_survive_pickling() -> None:
    html, url, _ = load_article(article_ids()[1])
    parsed = parse_page(html, url)

    assert pickle.loads(pickle.dumps(parse_page)) is parse_page
    assert pickle.loads(pickle.dumps(parsed)) == parsed


def test_a_page_without_content_has_no_text_but_keeps_metadata() -> None:
    parsed = parse_page("<html><head><title>Empty</title></head><body></body></html>", "https://example.com/")

    assert parsed == ParsedPage(metadata=parsed.metadata, text=None)
    assert parsed.metadata.title == "Empty"
