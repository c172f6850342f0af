"""Hostile pages through the real processor on Ray: each ends in its typed outcome, nothing else is hurt."""

from __future__ import annotations

from tests.integration.conftest import outcome_counts, wait_for
from tests.pages import Reply, article_ids, load_article


def test_hostile_pages_end_in_typed_outcomes_while_a_normal_page_completes(api, page_server, org):
    p = page_server
    port = p.port
    big = b"<html><head><title>big</title></head><body>" + b"<p>word </p>" * 900_000 + b"</body></html>"
    latin1 = (
        "<html><head><meta charset='iso-8859-1'><title>Caf\u00e9 cr\u00e8me</title></head><body><p>"
        + "Le caf\u00e9 cr\u00e8me se boit le matin \u00e0 Paris. " * 20
        + "</p></body></html>"
    )
    prose = load_article(article_ids()[13])[2][:3000]
    cases = {
        p.gzip_bomb(f"/{org}/bomb"): ("failed", "fetch:too_large"),
        p.endless(f"/{org}/endless"): ("failed", "fetch:too_large"),
        p.drip(f"/{org}/drip", interval=0.5, count=100): ("failed", "fetch:timeout"),
        p.page(f"/{org}/big", big): ("failed", "fetch:too_large"),
        p.page(f"/{org}/pdf", b"%PDF-1.7", content_type="application/pdf"): ("failed", "fetch:unsupported_type"),
        p.redirect(f"/{org}/loop", f"/{org}/loop"): ("failed", "fetch:too_many_redirects"),
        p.redirect(f"/{org}/private", f"http://127.0.0.2:{port}/"): ("failed", "fetch:blocked"),
        p.page(f"/{org}/missing", "<html>gone</html>", status=404): ("failed", "fetch:404"),
        p.page(f"/{org}/broken", "<html>down</html>", status=500): ("failed", "fetch:500"),
        p.sequence(
            f"/{org}/busy",
            Reply(status=429, headers={"Retry-After": "1"}),
            Reply(body=load_article(article_ids()[11])[0].encode(), headers={"Content-Type": "text/html"}),
        ): ("completed", None),
        p.page(f"/{org}/latin1", latin1.encode("latin-1"), content_type="text/html"): ("completed", None),
        p.page(
            f"/{org}/tags",
            f"<html><head><title>&lt;b&gt; Fish &amp; Chips &#8211; caf&eacute;</title><body><p>{prose}</p></body></html>",
        ): (
            "completed",
            None,
        ),
        p.page(f"/{org}/thin", "<html><head><title>Thin</title></head><body>x</body></html>"): (
            "failed",
            "ai:invalid_output",
        ),
        p.article_url(article_ids()[12]): ("completed", None),
    }
    ids = {url: api.post("/links", json={"url": url}).json()["id"] for url in cases}

    def all_terminal() -> bool:
        return all(
            api.get(f"/links/{i}").json()["processing"]["status"] in {"completed", "failed"} for i in ids.values()
        )

    wait_for(all_terminal, timeout=120)
    for url, (status, error) in cases.items():
        link = api.get(f"/links/{ids[url]}").json()
        assert (link["processing"]["status"], link["processing"]["error"]) == (status, error), url
        assert outcome_counts(api, ids[url]) == {"started": 1, "resumed": 0, "terminal": 1}
    latin = api.get(f"/links/{ids[p.url(f'/{org}/latin1')]}").json()
    assert latin["metadata"]["title"] == "Caf\u00e9 cr\u00e8me"
    thin = api.get(f"/links/{ids[p.url(f'/{org}/thin')]}").json()
    assert thin["metadata"]["title"] == "Thin", "metadata found before a later step failed is kept"
    entities = api.get(f"/links/{ids[p.url(f'/{org}/tags')]}").json()
    assert entities["metadata"]["title"] == "<b> Fish & Chips \u2013 caf\u00e9"
