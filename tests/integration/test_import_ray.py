"""An import on the real local Ray cluster: every link processed exactly once, a second import adds nothing, search finds them."""

from __future__ import annotations

import re

import pytest
from tests.integration.conftest import log_of, wait_for
from tests.pages import article_ids

from linkproc_ray.core import events as ev

pytestmark = pytest.mark.ray


def test_an_import_is_processed_once_per_link_and_found_by_a_word_of_a_summary(api, page_server):
    urls = [page_server.article_url(page) for page in article_ids()[10:22]]
    body = {"links": [*({"url": u, "tags": ["reading"]} for u in urls), "javascript:void(0)", urls[0]]}
    first = api.post("/links:batch", json=body).json()
    assert first["counts"] == {"created": 12, "exists": 0, "duplicate": 1, "invalid": 1}
    ids = {r["id"] for r in first["results"] if r["outcome"] == "created"}

    def all_terminal() -> list[dict] | None:
        log = log_of(api)
        ended = {e["args"]["linkId"] for e in log if e["name"] in ev.TERMINAL_EVENTS}
        return log if ids <= ended else None

    log = wait_for(all_terminal, timeout=120)
    for link_id in ids:
        started = [e for e in log if e["name"] == ev.LinkProcessingStarted.NAME and e["args"]["linkId"] == link_id]
        ended = [e for e in log if e["name"] in ev.TERMINAL_EVENTS and e["args"]["linkId"] == link_id]
        assert (len(started), len(ended)) == (1, 1)

    assert api.post("/links:batch", json=body).json()["counts"] == {
        "created": 0,
        "exists": 12,
        "duplicate": 1,
        "invalid": 1,
    }
    summary = next(e for e in log if e["name"] == ev.LinkSummarized.NAME)
    word = max(re.findall(r"[A-Za-z]{5,}", summary["args"]["summary"]), key=len)
    hits = api.get("/links", params={"q": word, "limit": 200}).json()["links"]
    assert summary["args"]["linkId"] in {hit["id"] for hit in hits}
    assert all(hit["tags"] == ["reading"] for hit in hits)
