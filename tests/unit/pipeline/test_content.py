"""extract_text against the articles benchmark (tests/data/articles), and the readable-content threshold."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from tests.pages import article_ids, load_article

from linkproc_ray.pipeline.content import MIN_WORDS, extract_text

_TOKEN = re.compile(r"\w+")


def shingles(text: str) -> Counter[tuple[str, ...]]:
    """The benchmark's unit: the multiset of 4-token shingles of ``\\w+`` tokens."""
    tokens = _TOKEN.findall(text)
    return Counter(tuple(tokens[i : i + 4]) for i in range(len(tokens) - 3))


def precision_recall(extracted: str, truth: str) -> tuple[float, float]:
    """Shingle precision and recall of one page; an empty extraction has precision 0."""
    got, want = shingles(extracted), shingles(truth)
    common = sum((got & want).values())
    precision = common / sum(got.values()) if got else 0.0
    recall = common / sum(want.values()) if want else 1.0
    return precision, recall


def test_benchmark_f1_over_all_articles_is_at_least_095() -> None:
    ids = article_ids()
    scores = []
    for page_id in ids:
        html, url, truth = load_article(page_id)
        scores.append(precision_recall(extract_text(html, url) or "", truth))
    precision = sum(p for p, _ in scores) / len(scores)
    recall = sum(r for _, r in scores) / len(scores)
    f1 = 2 * precision * recall / (precision + recall)

    assert len(ids) == 121
    assert f1 >= 0.95, f"F1 {f1:.4f} (precision {precision:.4f}, recall {recall:.4f})"


def test_scoring_counts_repeated_shingles_as_a_multiset() -> None:
    # Five shingles, "a b c d" twice; as a set it would be 1 of 4, not 1 of 5.
    assert precision_recall("a b c d a b c d", "a b c d") == (0.2, 1.0)


ARTICLE = "<html><head><title>Rivers</title></head><body><nav><a href='/'>Home</a><a href='/about'>About</a></nav><article><h1>Rivers of the north</h1>{}</article><footer>© 2024 Example News</footer></body></html>"
PARAGRAPH = "<p>The river runs north through the valley for many miles before it reaches the sea, carrying silt from the high mountains to the wide delta where the fishermen live.</p>"


def test_article_text_is_returned_without_navigation_and_footer() -> None:
    text = extract_text(ARTICLE.format(PARAGRAPH * 3), "https://news.example/rivers")

    assert text is not None
    assert "The river runs north through the valley" in text
    assert "About" not in text and "© 2024" not in text


@pytest.mark.parametrize(
    "html",
    [
        ARTICLE.format("<p>Too short to summarize, only a handful of words here.</p>"),
        "<html><body><p>" + " ".join(["word"] * (MIN_WORDS - 1)) + "</p></body></html>",
        "<html><body></body></html>",
        "",
        "not html at all",
    ],
)
def test_pages_below_the_word_threshold_give_none(html: str) -> None:
    assert extract_text(html, "https://news.example/short") is None
