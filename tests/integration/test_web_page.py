"""The web page in a real browser (Debian's Chromium through Playwright) against the real system on Ray.

Every browser context is fenced to loopback: a request for any other host is
aborted before it leaves, and host names other than 127.0.0.1 do not resolve.
The tests synchronise on what the page shows (Playwright's ``expect`` waits)
and on the org's log, never on fixed sleeps. The last test writes the
README's screenshots (docs/web-page.png, docs/web-page-phone.png).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect, sync_playwright
from tests.integration.conftest import outcome_counts, wait_for
from tests.pages import PageServer, article_ids, load_article
from tests.tcp_proxy import TcpProxy

from linkproc_ray.core import events as ev

pytestmark = pytest.mark.ray

CHROMIUM = Path(os.environ.get("LINKPROC_CHROMIUM", "/usr/bin/chromium"))
REPO = Path(__file__).resolve().parents[2]
LOOPBACK = {"127.0.0.1", "localhost"}
PROCESSED = 90_000
"""Milliseconds a link may take to be processed on a busy two-core machine."""
SHORT = 15_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run installs it)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"],
        )
        yield launched
        launched.close()


def _loopback_only(route: Route) -> None:
    if urlsplit(route.request.url).hostname in LOOPBACK:
        route.continue_()
    else:
        route.abort()


def new_context(browser: Browser, **options: object) -> BrowserContext:
    context = browser.new_context(**options)  # type: ignore[arg-type]
    context.route("**/*", _loopback_only)
    return context


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = new_context(browser, viewport={"width": 1280, "height": 900})
    yield context
    context.close()


@dataclass
class Tab:
    """A page and everything it did: requests, sockets, dialogs, script errors, loads."""

    page: Page
    requested: list[str] = field(default_factory=list)
    sockets: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    loads: int = 0

    def row(self, link_id: str):  # type: ignore[no-untyped-def]
        return self.page.locator(f'li.link[data-id="{link_id}"]')

    @property
    def rows(self):  # type: ignore[no-untyped-def]
        return self.page.locator("li.link")

    def live(self) -> Tab:
        expect(self.page.locator("#connection")).to_have_text("Live", timeout=SHORT)
        return self

    def focus_by_tab(self, label: str, presses: int = 60) -> None:
        """Press Tab until the focused element's accessible label (or text) is ``label``."""
        for _ in range(presses):
            self.page.keyboard.press("Tab")
            focused = self.page.evaluate(
                "() => document.activeElement.getAttribute('aria-label') || document.activeElement.textContent"
            )
            if focused == label:
                return
        raise AssertionError(f"Tab never reached {label!r}")


NETWORK_ERRORS = ("Failed to load resource", "WebSocket connection to")
"""How Chromium logs a failed load (a 404 favicon, a fenced image, a socket cut off): not script errors."""


def _record_console_error(tab: Tab, kind: str, text: str) -> None:
    if kind == "error" and not text.startswith(NETWORK_ERRORS):
        tab.errors.append(text)


def open_tab(context: BrowserContext, base: str, token: str | None = None) -> Tab:
    page = context.new_page()
    tab = Tab(page)
    page.on("request", lambda request: tab.requested.append(request.url))
    page.on("websocket", lambda socket: tab.sockets.append(socket.url))
    page.on("dialog", lambda dialog: (tab.dialogs.append(dialog.message), dialog.dismiss()))
    page.on("pageerror", lambda error: tab.errors.append(str(error)))
    page.on("console", lambda message: _record_console_error(tab, message.type, message.text))

    def loaded() -> None:
        tab.loads += 1

    page.on("load", loaded)
    page.goto(f"{base}/" + (f"#token={token}" if token else ""))
    return tab


def assert_token_only_in_socket_urls(tab: Tab, token: str) -> None:
    assert tab.requested and tab.sockets
    assert [url for url in tab.requested if token in url] == []
    for url in tab.sockets:
        query = parse_qs(urlsplit(url).query)
        assert query["token"] == [token]
        assert token not in urlsplit(url).path


def assert_nothing_ran(tab: Tab) -> None:
    assert tab.dialogs == []
    assert tab.errors == []


def push_events(api: httpx.Client, *args: ev.EventArgs) -> list[int]:
    """Commit events through the REST push, retrying on server_ahead (the processor pushes too)."""
    events = [
        {"id": ev.new_id(), "name": a.NAME, "args": a.to_json(), "clientId": "web-test", "sessionId": "web-test"}
        for a in args
    ]
    for _ in range(20):
        head = api.get("/events", params={"after": 0, "limit": 1}).json()["head"]
        response = api.post("/events", json={"parent": head, "events": events})
        if response.status_code == 200:
            return list(response.json()["seqs"])
        assert response.status_code == 409, response.text
    raise AssertionError("the push never found the head")


def processing(api: httpx.Client, link_id: str) -> dict[str, object]:
    return dict(api.get(f"/links/{link_id}").json()["processing"])


def wait_terminal(api: httpx.Client, *link_ids: str) -> None:
    wait_for(
        lambda: all(processing(api, i)["status"] in ("completed", "failed") for i in link_ids), timeout=PROCESSED / 1000
    )


# -- live -------------------------------------------------------------------------


def test_a_link_saved_in_one_tab_shows_its_title_then_summary_in_another_without_a_reload(
    context, serve_url, make_token, org, api, page_server
):
    token = make_token(org)
    a = open_tab(context, serve_url, token).live()
    b = open_tab(context, serve_url, token).live()
    url = page_server.article_url(article_ids()[30])

    a.page.fill("#url-input", url)
    a.page.press("#url-input", "Enter")
    expect(a.rows).to_have_count(1, timeout=SHORT)
    link_id = a.rows.first.get_attribute("data-id")
    assert link_id

    expect(b.row(link_id)).to_be_visible(timeout=SHORT)
    expect(b.row(link_id).locator(".summary")).to_be_visible(timeout=PROCESSED)
    expect(b.row(link_id).locator(".badge")).to_have_text("completed", timeout=SHORT)
    link = api.get(f"/links/{link_id}").json()
    expect(b.row(link_id).locator(".title")).to_have_text(link["metadata"]["title"])
    expect(b.row(link_id).locator(".summary")).to_have_text(link["summary"]["text"])
    expect(b.page.locator("#announcer")).to_have_text(f"Ready: {link['metadata']['title']}", timeout=SHORT)
    anchor = b.row(link_id).locator(".title a")
    assert (anchor.get_attribute("href"), anchor.get_attribute("target"), anchor.get_attribute("rel")) == (
        url,
        "_blank",
        "noopener noreferrer",
    )
    expect(b.rows).to_have_count(1)
    expect(a.row(link_id).locator(".summary")).to_have_text(link["summary"]["text"], timeout=SHORT)

    assert (a.loads, b.loads) == (1, 1), "neither tab reloaded"
    for tab in (a, b):
        assert_token_only_in_socket_urls(tab, token)
        assert_nothing_ran(tab)
    assert a.page.url == f"{serve_url}/", "the token left the address bar"


def test_the_socket_is_cut_and_the_page_catches_up_without_a_reload_or_duplicates(
    context, serve_url, make_token, org, api, page_server
):
    token = make_token(org)
    first = api.post("/links", json={"url": page_server.article_url(article_ids()[31])}).json()["id"]
    wait_terminal(api, first)
    with TcpProxy("127.0.0.1", int(urlsplit(serve_url).port or 80)) as proxy:
        tab = open_tab(context, proxy.url, token).live()
        expect(tab.rows).to_have_count(1)
        # Something arrives live first, so the page's position moves past the head it loaded.
        assert api.post(f"/links/{first}/reprocess").status_code == 202
        wait_for(lambda: outcome_counts(api, first)["terminal"] == 2, timeout=PROCESSED / 1000)
        expect(tab.row(first).locator(".badge")).to_have_text("completed", timeout=SHORT)
        seen = api.get("/events", params={"after": 0, "limit": 1}).json()["head"]

        proxy.cut()
        expect(tab.page.locator("#connection")).to_have_text(re.compile(r"^Offline"), timeout=SHORT)
        # While the page is cut off: two new links, and the one it shows is processed again.
        saved = [
            api.post("/links", json={"url": page_server.article_url(article_ids()[i])}).json()["id"] for i in (32, 33)
        ]
        assert api.post(f"/links/{first}/reprocess").status_code == 202
        wait_for(lambda: outcome_counts(api, first)["terminal"] == 3, timeout=PROCESSED / 1000)
        wait_terminal(api, *saved)
        # Its first retry comes within a second of the cut (backoff 1 s doubling); the
        # processing above may well be quicker than that.
        wait_for(lambda: proxy.refused >= 1, timeout=15)  # the page tried to reconnect while cut off
        proxy.restore()

        tab.live()
        for link_id in [*saved, first]:
            expect(tab.row(link_id).locator(".badge")).to_have_text("completed", timeout=SHORT)
        expect(tab.rows).to_have_count(3)
        ids = [row.get_attribute("data-id") for row in tab.rows.all()]
        assert ids == [*reversed(saved), first], "newest first, each link once"

    after = [int(parse_qs(urlsplit(url).query)["after"][0]) for url in tab.sockets]
    assert after[0] < seen and len(after) >= 2
    assert set(after[1:]) == {seen}, "every reconnect resumed from the last seq the page had seen"
    assert len([url for url in tab.requested if urlsplit(url).path.endswith("/links")]) == 1, "the list loaded once"
    assert tab.loads == 1
    assert_token_only_in_socket_urls(tab, token)
    assert_nothing_ran(tab)


# -- what it shows ---------------------------------------------------------------


def test_failures_are_shown_in_words_and_the_filters_narrow_the_list(
    context, serve_url, make_token, org, api, page_server: PageServer
):
    p = page_server
    cases = {
        p.page(f"/{org}/missing", "<html>gone</html>", status=404): "the page was not found (HTTP 404)",
        p.page(f"/{org}/file.pdf", b"%PDF-1.7", content_type="application/pdf"): "the link is not a web page",
        p.drip(f"/{org}/slow", interval=0.5, count=100): "the page took too long to answer",
        p.page(f"/{org}/thin", "<html><head><title>Thin</title></head><body>x</body></html>"): "no valid summary",
    }
    ids = {api.post("/links", json={"url": url}).json()["id"]: words for url, words in cases.items()}
    done = api.post("/links", json={"url": p.article_url(article_ids()[34])}).json()["id"]
    tab = open_tab(context, serve_url, make_token(org)).live()

    expect(tab.page.locator("li.link .badge-failed")).to_have_count(len(ids), timeout=PROCESSED)
    expect(tab.row(done).locator(".badge")).to_have_text("completed", timeout=PROCESSED)
    for link_id, words in ids.items():
        code = processing(api, link_id)["error"]
        expect(tab.row(link_id).locator(".failure-words")).to_contain_text(words)
        expect(tab.row(link_id).locator(".failure-code")).to_have_text(str(code))
    assert {processing(api, i)["error"] for i in ids} == {
        "fetch:404",
        "fetch:unsupported_type",
        "fetch:timeout",
        "ai:invalid_output",
    }

    tab.page.select_option("#status-filter", "failed")
    expect(tab.rows).to_have_count(len(ids))
    tab.page.select_option("#status-filter", "completed")
    expect(tab.rows).to_have_count(1)
    expect(tab.row(done)).to_be_visible()
    tab.page.select_option("#status-filter", "")
    expect(tab.rows).to_have_count(len(ids) + 1)
    tab.page.fill("#text-filter", "file.pdf")
    expect(tab.page.locator("li.link:not([hidden])")).to_have_count(1)
    expect(tab.page.locator("#list-note")).to_contain_text("1 of 5 loaded links")
    assert_nothing_ran(tab)


def test_reprocess_and_delete_from_the_keyboard(browser, context, serve_url, make_token, org, api, page_server):
    link_id = api.post("/links", json={"url": page_server.article_url(article_ids()[35])}).json()["id"]
    wait_terminal(api, link_id)
    title = api.get(f"/links/{link_id}").json()["metadata"]["title"]
    token = make_token(org)
    tab = open_tab(context, serve_url, token).live()
    other = open_tab(context, serve_url, token).live()
    expect(other.row(link_id)).to_be_visible()

    tab.page.focus("#url-input")
    tab.focus_by_tab(f"Reprocess {title}")
    # Waiting for the page's request first tells a page that never sent it from a server that never ran it.
    with tab.page.expect_response(lambda response: response.url.endswith(f"/links/{link_id}/reprocess")) as answer:
        tab.page.keyboard.press("Enter")
    assert answer.value.status == 202, answer.value.text()
    wait_for(lambda: outcome_counts(api, link_id) == {"started": 2, "resumed": 0, "terminal": 2}, timeout=90)
    expect(tab.row(link_id).locator(".badge")).to_have_text("completed", timeout=SHORT)
    expect(other.row(link_id).locator(".badge")).to_have_text("completed", timeout=SHORT)

    tab.focus_by_tab(f"Delete {title}")
    tab.page.keyboard.press("Enter")
    expect(tab.rows).to_have_count(0, timeout=SHORT)
    expect(other.rows).to_have_count(0, timeout=SHORT)
    assert api.get(f"/links/{link_id}").json()["deletedAt"] is not None
    expect(tab.page.locator("#announcer")).to_have_text(f"Deleted: {title}")
    for each in (tab, other):
        assert_nothing_ran(each)


def test_hostile_content_is_text_and_no_script_runs(context, serve_url, make_token, org, api, page_server):
    prose = load_article(article_ids()[36])[2][:2500]
    hostile_title = "<img src=x onerror=alert(1)>"
    page = (
        f"<html><head><title>{hostile_title}</title>"
        '<meta property="og:image" content="javascript:alert(1)">'
        '<meta property="og:site_name" content="&lt;b onmouseover=alert(3)&gt;site&lt;/b&gt;">'
        '<meta name="description" content="&lt;script&gt;alert(2)&lt;/script&gt;">'
        '<link rel="icon" href="javascript:alert(9)">'
        f"</head><body><p>&lt;img src=x onerror=alert(4)&gt; {prose}</p></body></html>"
    )
    url = page_server.page(f"/{org}/hostile", page)
    token = make_token(org)
    tab = open_tab(context, serve_url, token).live()
    tab.page.fill("#url-input", url)
    tab.page.press("#url-input", "Enter")

    # A client may push anything the schema allows: URLs no page could give, straight into the log.
    pushed_id = ev.new_id()
    push_events(
        api,
        ev.LinkCreated(id=pushed_id, url="javascript:alert(5)", domain="x", createdAt=ev.utc_now()),
        ev.LinkMetadataFetched(
            id=ev.new_id(),
            linkId=pushed_id,
            title="<svg onload=alert(8)>",
            image="javascript:alert(7)",
            favicon="data:image/svg+xml,<svg xmlns='http://www.w3.org/2000/svg' onload='alert(6)'/>",
            siteName="<iframe src=javascript:alert(10)>",
            fetchedAt=ev.utc_now(),
        ),
    )
    expect(tab.rows).to_have_count(2, timeout=SHORT)
    hostile_id = next(link["id"] for link in api.get("/links").json()["links"] if link["url"] == url)
    expect(tab.row(hostile_id).locator(".badge")).to_have_text("completed", timeout=PROCESSED)
    expect(tab.row(pushed_id).locator(".title")).to_contain_text("<svg onload=alert(8)>", timeout=SHORT)

    expect(tab.row(hostile_id).locator(".title")).to_have_text(hostile_title)
    assert tab.row(hostile_id).locator(".title a").get_attribute("href") == url
    expect(tab.row(pushed_id).locator(".title")).to_contain_text("not an http(s) link")
    assert tab.row(pushed_id).locator("a").count() == 0
    assert tab.page.locator("#links img:not(.favicon), #links iframe, #links svg, #links script").count() == 0
    for src in tab.page.locator("#links img").evaluate_all("images => images.map(i => i.getAttribute('src'))"):
        assert src.startswith(("http://", "https://")), src
    for href in tab.page.locator("#links a").evaluate_all("links => links.map(a => a.getAttribute('href'))"):
        assert href.startswith(("http://", "https://")), href
    link = api.get(f"/links/{hostile_id}").json()
    assert link["metadata"]["image"] is None, "the extractor keeps only http(s) images"
    assert link["metadata"]["siteName"] == "<b onmouseover=alert(3)>site</b>"
    expect(tab.row(hostile_id).locator(".site")).to_have_text(link["metadata"]["siteName"])
    expect(tab.row(hostile_id).locator(".summary")).to_contain_text("<img src=x onerror=alert(4)>")
    assert_nothing_ran(tab)
    assert_token_only_in_socket_urls(tab, token)


# -- signing in -------------------------------------------------------------------


def sign_in_shows(tab: Tab, message: str | re.Pattern[str]) -> None:
    expect(tab.page.locator("#sign-in")).to_be_visible(timeout=SHORT)
    expect(tab.page.locator("#links-view")).to_be_hidden()
    expect(tab.page.locator("#sign-in-message")).to_contain_text(message)
    assert tab.page.evaluate("() => sessionStorage.length") == 0
    assert "#" not in tab.page.url


@pytest.mark.parametrize(
    ("make_bad", "message"),
    [
        (lambda token: "not-a-token", "That is not a token"),
        (
            lambda token: jwt.encode(
                {**jwt.decode(token, options={"verify_signature": False})}, "another-secret-of-enough-length-xx"
            ),
            "The server refused your token",
        ),
        (
            lambda token: jwt.encode(
                {**jwt.decode(token, options={"verify_signature": False}), "exp": 1}, "whatever-secret-of-length-xxxxxx"
            ),
            "That token expired",
        ),
    ],
    ids=["malformed", "wrong-signature", "expired"],
)
def test_a_bad_token_shows_the_sign_in_form_with_why(
    context, serve_url, make_token, org, make_bad: Callable[[str], str], message: str
):
    tab = open_tab(context, serve_url, make_bad(make_token(org)))
    sign_in_shows(tab, message)
    assert_nothing_ran(tab)


def test_a_pasted_token_signs_in_and_one_that_expires_while_open_signs_out(context, serve_url, make_token, org):
    tab = open_tab(context, serve_url)
    sign_in_shows(tab, "")
    tab.page.fill("#token-input", make_token(org, ttl=6))
    tab.page.click("#sign-in-form button")
    tab.live()
    expect(tab.page.locator("#org")).to_have_text(org)
    # The server closes the socket (4401) when the token expires; the page asks for a new one.
    sign_in_shows(tab, "Your token has expired")
    assert_nothing_ran(tab)


# -- the README's screenshots -------------------------------------------------------


def test_screenshots_of_a_working_org_at_desktop_and_phone_width(browser, serve_url, make_token, page_server):
    org = "acme"
    with httpx.Client(
        base_url=f"{serve_url}/v1/orgs/{org}", headers={"Authorization": f"Bearer {make_token(org)}"}, timeout=30
    ) as api:
        urls = [page_server.article_url(article_ids()[i]) for i in (40, 41, 42)]
        urls.insert(1, page_server.page("/acme/gone", "<html>gone</html>", status=404))
        ids = [api.post("/links", json={"url": url}).json()["id"] for url in urls]
        wait_terminal(api, *ids)
    shots = {"web-page.png": {"width": 1200, "height": 900}, "web-page-phone.png": {"width": 390, "height": 844}}
    for name, viewport in shots.items():
        context = new_context(browser, viewport=viewport)
        try:
            tab = open_tab(context, serve_url, make_token(org)).live()
            expect(tab.page.locator("li.link .badge-completed")).to_have_count(3)
            expect(tab.page.locator("li.link .badge-failed")).to_have_count(1)
            tab.page.locator("#url-input").blur()
            tab.page.screenshot(path=str(REPO / "docs" / name), full_page=name == "web-page.png")
            assert_nothing_ran(tab)
        finally:
            context.close()
