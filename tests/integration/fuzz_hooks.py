"""Schemathesis hooks of the contract fuzz (tests/integration/test_api_fuzz.py): keep every fetch on loopback.

The processor fetches every saved URL, so a URL the API would accept is moved
onto the session's page server (path and query kept) before it is sent; one it
would refuse is sent as it is. Valid requests stay valid and invalid ones
invalid, so the checks still mean what they say. Long polls are capped so a
valid ``wait`` of up to 30 s does not use the run's time up.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import schemathesis

from linkproc_ray.core import events as ev
from linkproc_ray.core.limits import MAX_URL_LENGTH
from linkproc_ray.core.urls import canonicalize_url
from linkproc_ray.errors import InvalidURL

PAGE_HOST_ENV = "LINKPROC_FUZZ_PAGE_HOST"
"""``host:port`` of the page server, set by the test that runs Schemathesis."""

LONG_POLL_CAP = 0.2


def onto_page_server(url: Any, page_host: str) -> Any:
    """A URL the API would accept, moved onto ``page_host``; anything else unchanged."""
    if not isinstance(url, str):
        return url
    try:
        canonical = canonicalize_url(url)
    except InvalidURL:
        return url
    parts = urlsplit(canonical)
    moved = urlunsplit(("http", page_host, parts.path, parts.query, ""))
    return moved if len(moved) <= MAX_URL_LENGTH else f"http://{page_host}/fuzz"


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    page_host = os.environ[PAGE_HOST_ENV]
    body = case.body
    operation_id = case.operation.definition.raw.get("operationId")
    if operation_id == "create_link" and isinstance(body, dict) and "url" in body:
        body["url"] = onto_page_server(body["url"], page_host)
    if operation_id == "push_events" and isinstance(body, dict) and isinstance(body.get("events"), list):
        for item in body["events"]:
            if not isinstance(item, dict) or item.get("name") != ev.LinkCreated.NAME:
                continue
            args = item.get("args")
            url = args.get("url") if isinstance(args, dict) else None
            # Events carry URLs as data (not checked as URLs): any pushed one is replaced.
            if isinstance(args, dict) and isinstance(url, str) and 0 < len(url) <= MAX_URL_LENGTH:
                args["url"] = f"http://{page_host}/fuzz-pushed"
    if isinstance(case.query, dict) and _valid_wait(case.query.get("wait")):
        case.query["wait"] = LONG_POLL_CAP


def _valid_wait(value: Any) -> bool:
    # The coverage phase sends query values as strings too.
    if isinstance(value, bool):
        return False
    try:
        wait = float(value)
    except (TypeError, ValueError):
        return False
    return LONG_POLL_CAP < wait <= 30
