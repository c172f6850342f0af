"""The web page: ``GET /`` and its files under ``/app/``, served by the ingress itself (docs/API.md "The web page").

The files ship inside the package (``linkproc_ray/api/web/``), so ``linkproc up``
and ``serve deploy`` serve the same page with no web server and no build step.
Page content comes from arbitrary web pages, so every answer carries a policy
that lets only these files run: no inline script, no eval, no HTML from strings.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib.resources import files
from pathlib import PurePath
from typing import Annotated, Final

from fastapi import FastAPI, Path, Request
from fastapi.responses import Response

from linkproc_ray.errors import NotFound

CONTENT_SECURITY_POLICY: Final = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        # Favicons and preview images live on the saved sites; data: and blob: never load.
        "img-src 'self' https: http:",
        "connect-src 'self'",
        "base-uri 'none'",
        # The page's forms are handled by its script; one must never submit (a token in a query string).
        "form-action 'none'",
        "frame-ancestors 'none'",
        # Assigning a string to innerHTML (or any other HTML sink) throws.
        "require-trusted-types-for 'script'",
        "trusted-types 'none'",
    )
)

SECURITY_HEADERS: Final = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}
"""Sent with the page and with each of its files."""

CONTENT_TYPES: Final = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}

ASSET_NAME: Final = r"^[a-z][a-z0-9-]*\.(js|css|svg)$"
"""The files under ``/app/``: flat names, no paths."""


@dataclass(frozen=True, slots=True)
class WebFile:
    """One packaged file, read once: its bytes, type and entity tag."""

    body: bytes
    content_type: str
    etag: str

    def response(self, request: Request) -> Response:
        """The file, or 304 when the browser's copy is current (``Cache-Control: no-cache`` makes it ask)."""
        headers = {**SECURITY_HEADERS, "ETag": self.etag, "Cache-Control": "no-cache"}
        if request.headers.get("if-none-match") == self.etag:
            return Response(status_code=304, headers=headers)
        return Response(self.body, media_type=self.content_type, headers=headers)


def load_web_files() -> dict[str, WebFile]:
    """Every file of the packaged ``web`` folder by name."""
    loaded: dict[str, WebFile] = {}
    for entry in (files("linkproc_ray.api") / "web").iterdir():
        suffix = PurePath(entry.name).suffix
        if not entry.is_file() or suffix not in CONTENT_TYPES:
            continue
        body = entry.read_bytes()
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        loaded[entry.name] = WebFile(body, CONTENT_TYPES[suffix], etag)
    return loaded


def add_web_routes(api: FastAPI) -> None:
    """Register ``GET /`` (the page) and ``GET /app/{asset}`` (its scripts and styles) on ``api``."""
    web = load_web_files()
    page = web["index.html"]

    @api.get("/", response_class=Response, responses={200: {"content": {"text/html": {}}, "description": "The page"}})
    async def web_page(request: Request) -> Response:
        """The web page: sign in, save, read and manage links, live."""
        return page.response(request)

    @api.get(
        "/app/{asset}",
        response_class=Response,
        responses={
            200: {"content": {"text/javascript": {}, "text/css": {}, "image/svg+xml": {}}, "description": "The file"},
            404: {"description": "No such file"},
        },
    )
    async def web_asset(request: Request, asset: Annotated[str, Path(pattern=ASSET_NAME)]) -> Response:
        """A script, style sheet or icon of the page."""
        found = web.get(asset)
        if found is None:
            raise NotFound(f"no file {asset!r} under /app/")
        return found.response(request)
