"""The public HTTP contract (docs/API.md) as a FastAPI app over a :class:`Gateway`.

No Ray here: the Serve adapter supplies a gateway of named actors, tests a
:class:`~linkproc_ray.api.gateway.LocalGateway`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any, Final, Literal

from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Route

from linkproc_ray.api import schema
from linkproc_ray.api.auth import Principal, TokenVerifier, require_org_id
from linkproc_ray.api.metrics import METRICS
from linkproc_ray.api.web import add_web_routes
from linkproc_ray.api.ws import add_sync_socket
from linkproc_ray.core import events as ev
from linkproc_ray.core.bookmarks import MAX_TAG_LENGTH, NewBookmark, unique_tags, write_json, write_netscape
from linkproc_ray.core.events import new_id, parse_push, utc_now
from linkproc_ray.core.limits import (
    DEFAULT_PULL_LIMIT,
    MAX_BODY_BYTES,
    MAX_ID_LENGTH,
    MAX_IMPORT_BODY_BYTES,
    MAX_IMPORT_LINKS,
    MAX_LINK_BODY_BYTES,
    MAX_PULL_LIMIT,
    MAX_PULL_WAIT,
    MAX_SEQ,
    MAX_URL_LENGTH,
)
from linkproc_ray.core.search import MAX_QUERY_LENGTH
from linkproc_ray.core.types import JSON
from linkproc_ray.core.urls import canonicalize_url, domain_of
from linkproc_ray.errors import BatchTooLarge, InvalidTag, InvalidURL, LinkprocError, MalformedBody, NotFound
from linkproc_ray.sync.ports import Gateway, OrgBackend

ProcessingFilter = Literal["none", "pending", "completed", "failed", "cancelled", "reprocess_requested"]
"""A ``processing`` filter value of ``GET /links``: a processing status, or ``none`` for not started yet."""

_STATUS_CODES: Final = {401: "unauthorized", 403: "forbidden", 404: "not_found", 413: "too_large"}
"""Codes for the statuses Starlette answers by itself (unknown route, wrong method)."""


def error_response(
    status: int, code: str, detail: str, headers: Mapping[str, str] | None = None, **extra: Any
) -> JSONResponse:
    """Every error body: ``{"error": code, "detail": text}`` plus optional fields (and headers, e.g. ``Allow``)."""
    all_headers = dict(headers or {})
    if status == 401:
        all_headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse({"error": code, "detail": detail, **extra}, status_code=status, headers=all_headers)


def linkproc_error_response(exc: LinkprocError) -> JSONResponse:
    """An error of the tree as its body and status: read from the error itself (see :mod:`linkproc_ray.errors`)."""
    detail = str(exc) if exc.code == exc.http_error else f"{exc.code}: {exc}"
    return error_response(exc.http_status, exc.http_error, detail, **exc.details())


class NewLink(BaseModel):
    """``POST /links``: an absolute http(s) URL, optionally where it came from."""

    model_config = ConfigDict(extra="forbid", strict=True)

    url: str = Field(min_length=1, max_length=MAX_URL_LENGTH, json_schema_extra=schema.URL_FIELD)
    source: str | None = Field(default=None, max_length=100)


def read_import(body: Any) -> tuple[list[JSON], list[tuple[int, NewBookmark]]]:
    """``POST /links:batch``'s body judged entry by entry: the answers of invalid ones, and the valid ones to save.

    Only the envelope can fail the whole request; a bad entry is answered
    ``invalid`` with its reason and the others are saved.
    """
    if not isinstance(body, dict) or not isinstance(body.get("links"), list):
        raise MalformedBody("body must be an object {'links': [{'url': …, 'tags'?: […]}…], 'source'?: str}")
    items: list[Any] = body["links"]
    if len(items) > MAX_IMPORT_LINKS:
        raise BatchTooLarge(f"an import holds at most {MAX_IMPORT_LINKS} links, got {len(items)}")
    source = body.get("source")
    if source is not None and (not isinstance(source, str) or len(source) > 100 or not ev.is_unicode(source)):
        raise MalformedBody("source must be a string of at most 100 characters")
    invalid: list[JSON] = []
    valid: list[tuple[int, NewBookmark]] = []
    for index, item in enumerate(items):
        raw = item.get("url") if isinstance(item, dict) else item
        shown = raw if isinstance(raw, str) and ev.is_unicode(raw) else ""
        tags = item.get("tags", []) if isinstance(item, dict) else []
        try:
            if not isinstance(raw, str) or not ev.is_unicode(raw):
                raise InvalidURL("url must be a string")
            if not isinstance(tags, list) or not all(isinstance(t, str) and ev.is_unicode(t) for t in tags):
                raise InvalidTag("tags must be a list of strings")
            url = canonicalize_url(raw)
        except (InvalidURL, InvalidTag) as exc:
            invalid.append({"index": index, "url": shown[:MAX_URL_LENGTH], "outcome": "invalid", "reason": str(exc)})
            continue
        valid.append((index, NewBookmark(url=url, domain=domain_of(url), tags=unique_tags(tags), source=source)))
    return invalid, valid


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def principal_for(request: Request, org: str) -> Principal:
    """Authenticate the request and authorise it for ``org`` (401, 400, 403 in that order)."""
    verifier: TokenVerifier = request.app.state.verifier
    principal = verifier.verify(_bearer(request))
    require_org_id(org)
    principal.require_org(org)
    return principal


OrgId = Annotated[
    str, Path(description="The organization: the token's `orgId`.", json_schema_extra=schema.ORG_PARAMETER)
]


async def org_backend(request: Request, org: OrgId) -> OrgBackend:
    principal_for(request, org)
    gateway: Gateway = request.app.state.gateway
    return await gateway.backend(org)


Backend = Annotated[OrgBackend, Depends(org_backend)]
LinkId = Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH, description="The link's id.")]
TagName = Annotated[
    str,
    Path(
        min_length=1,
        max_length=MAX_TAG_LENGTH,
        pattern=r"\S",
        description="A tag's name: at least one character that is not a space (whitespace runs become one space).",
    ),
]


async def read_json_body(request: Request, limit: int = MAX_BODY_BYTES) -> Any:
    """The body as JSON, refusing more than ``limit`` bytes before reading them all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BatchTooLarge(f"request body over {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BatchTooLarge(f"request body over {limit} bytes")
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MalformedBody(f"body is not valid JSON: {exc}") from None
    except RecursionError:
        # Thousands of nested brackets fit in a small body; the parser gives up, the server must not.
        raise MalformedBody("body is nested too deeply to be parsed") from None


def allowed_methods(request: Request) -> list[str]:
    """Every method the request's path takes: Starlette's own 405 names only the first route's (GET, not POST)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        if isinstance(route, Route) and route.methods and route.matches(request.scope)[0] is not Match.NONE:
            methods |= route.methods
    return sorted(methods)


def create_api() -> FastAPI:
    """The ingress app; set ``app.state.gateway`` and ``app.state.verifier`` before serving."""
    api = FastAPI(title="linkproc-ray", version="1", summary="Event-sourced link enrichment")

    @api.exception_handler(LinkprocError)
    async def _linkproc_error(request: Request, exc: LinkprocError) -> JSONResponse:
        return linkproc_error_response(exc)

    @api.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first["loc"])
        return error_response(422, "invalid_request", f"{where}: {first['msg']}", field=where)

    @api.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "invalid_request")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(request))
        return error_response(exc.status_code, code, str(exc.detail), headers=headers)

    @api.get("/healthz", operation_id="healthz", responses={200: {"model": schema.Health}})
    async def healthz() -> JSON:
        return {"status": "ok"}

    @api.get("/metrics", operation_id="metrics", response_class=PlainTextResponse)
    async def metrics() -> Response:
        body, content_type = METRICS.render()
        return Response(body, media_type=content_type)

    @api.get(
        "/v1/orgs/{org}/events",
        operation_id="pull_events",
        responses={200: {"model": schema.Pulled}, **schema.responses()},
    )
    async def pull_events(
        backend: Backend,
        after: Annotated[int, Query(ge=0, le=MAX_SEQ)] = 0,
        limit: Annotated[int, Query(ge=1, le=MAX_PULL_LIMIT)] = DEFAULT_PULL_LIMIT,
        wait: Annotated[float, Query(ge=0, le=MAX_PULL_WAIT)] = 0,
    ) -> JSON:
        result = await backend.pull(after, limit, wait)
        METRICS.events_pulled.inc(len(result.events))
        return {"events": [e.to_json() for e in result.events], "head": result.head}

    @api.post(
        "/v1/orgs/{org}/events",
        operation_id="push_events",
        openapi_extra=schema.request_body(schema.PUSH_BODY),
        responses={
            200: {"model": schema.Pushed},
            **schema.responses(schema.MALFORMED, schema.SERVER_AHEAD, schema.TOO_LARGE, schema.INVALID, writes=True),
        },
    )
    async def push_events(request: Request, backend: Backend) -> JSON:
        parent, events = parse_push(await read_json_body(request))
        result = await backend.push(parent, events)
        METRICS.events_pushed.inc(len(events))
        return {"head": result.head, "seqs": result.seqs}

    @api.post(
        "/v1/orgs/{org}/links",
        operation_id="create_link",
        status_code=201,
        openapi_extra=schema.request_body(NewLink.model_json_schema()),
        responses={
            201: {"model": schema.Link, "description": "A new link.", "links": schema.LINK_LINKS},
            200: {"model": schema.Link, "description": "The same URL is saved already.", "links": schema.LINK_LINKS},
            **schema.responses(schema.MALFORMED, schema.TOO_LARGE, schema.INVALID, writes=True),
        },
    )
    async def create_link(request: Request, backend: Backend) -> JSONResponse:
        body = await read_json_body(request, limit=MAX_LINK_BODY_BYTES)
        try:
            new = NewLink.model_validate(body)
        except ValueError as exc:
            raise InvalidURL(f"body must be {{'url': 'https://…', 'source'?: str}}: {exc}") from None
        url = canonicalize_url(new.url)
        link, created = await backend.create_link(url, domain_of(url), new.source, new_id())
        return JSONResponse(link, status_code=201 if created else 200)

    @api.post(
        "/v1/orgs/{org}/links:batch",
        operation_id="import_links",
        openapi_extra=schema.request_body(schema.ImportBody.model_json_schema()),
        responses={
            200: {"model": schema.Imported, "description": "Each entry's outcome, in the order given."},
            **schema.responses(schema.MALFORMED, schema.TOO_LARGE, schema.INVALID, writes=True),
        },
    )
    async def import_links(request: Request, backend: Backend) -> JSON:
        invalid, valid = read_import(await read_json_body(request, limit=MAX_IMPORT_BODY_BYTES))
        saved = await backend.import_links([bookmark for _, bookmark in valid]) if valid else []
        results = invalid + [
            {"index": index, "url": bookmark.url, **outcome}
            for (index, bookmark), outcome in zip(valid, saved, strict=True)
        ]
        results.sort(key=lambda r: int(r["index"]))
        counts = dict.fromkeys(("created", "exists", "duplicate", "invalid"), 0)
        for result in results:
            counts[result["outcome"]] += 1
        return {"results": results, "counts": counts}

    @api.get(
        "/v1/orgs/{org}/links",
        operation_id="list_links",
        responses={200: {"model": schema.LinkPage}, **schema.responses()},
    )
    async def list_links(
        backend: Backend,
        q: Annotated[
            str | None,
            Query(
                min_length=1,
                max_length=MAX_QUERY_LENGTH,
                description="Full-text search: links with every word, best first, each with `search`.",
            ),
        ] = None,
        status: Literal["unread", "completed"] | None = None,
        processing: Annotated[list[ProcessingFilter] | None, Query()] = None,
        include_deleted: bool = False,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        cursor: Annotated[int | None, Query(ge=0, le=MAX_SEQ)] = None,
    ) -> JSON:
        if q is not None:
            # A search pages by rank: its cursor is how many results came before.
            offset = cursor or 0
            hits = await backend.search_links(q, limit, offset)
            return {"links": hits, "next_cursor": str(offset + limit) if len(hits) == limit else None}
        links, next_cursor = await backend.list_links(
            status=status, processing=processing, include_deleted=include_deleted, limit=limit, cursor=cursor
        )
        return {"links": links, "next_cursor": None if next_cursor is None else str(next_cursor)}

    @api.get(
        "/v1/orgs/{org}/export",
        operation_id="export_links",
        response_class=PlainTextResponse,
        responses={
            200: {
                "description": "Every live link: JSON `{format, version, org, exportedAt, links: [Link…]}`, "
                "or a Netscape bookmark file (tags in `TAGS`, the summary as `<DD>`).",
                "content": {"application/json": {}, "text/html": {}},
            },
            **schema.responses(),
        },
    )
    async def export_links(backend: Backend, org: OrgId, format: Literal["json", "html"] = "json") -> Response:
        links = await backend.export_links()
        if format == "html":
            return Response(
                write_netscape(links),
                media_type="text/html; charset=utf-8",
                headers={"Content-Disposition": f'attachment; filename="{org}-bookmarks.html"'},
            )
        return Response(
            write_json(org, utc_now(), links),
            media_type="application/json",
            headers={"Content-Disposition": f'attachment; filename="{org}-links.json"'},
        )

    async def live_link(backend: OrgBackend, link_id: str) -> JSON:
        link = await backend.get_link(link_id)
        if link is None or link["deletedAt"] is not None:
            raise NotFound(f"no link {link_id!r}")
        return link

    @api.get(
        "/v1/orgs/{org}/links/{link_id}",
        operation_id="get_link",
        responses={200: {"model": schema.Link, "links": schema.LINK_LINKS}, **schema.responses(schema.NOT_FOUND)},
    )
    async def get_link(backend: Backend, link_id: LinkId) -> JSON:
        link = await backend.get_link(link_id)
        if link is None:
            raise NotFound(f"no link {link_id!r}")
        return link

    @api.post(
        "/v1/orgs/{org}/links/{link_id}/reprocess",
        operation_id="reprocess_link",
        status_code=202,
        responses={202: {"model": schema.Link}, **schema.responses(schema.NOT_FOUND, writes=True)},
    )
    async def reprocess_link(backend: Backend, link_id: LinkId) -> JSON:
        await live_link(backend, link_id)
        await backend.append([ev.LinkReprocessRequested(linkId=link_id, requestedAt=utc_now())])
        return await live_link(backend, link_id)

    @api.delete(
        "/v1/orgs/{org}/links/{link_id}",
        operation_id="delete_link",
        responses={200: {"model": schema.Link}, **schema.responses(schema.NOT_FOUND, writes=True)},
    )
    async def delete_link(backend: Backend, link_id: LinkId) -> JSON:
        await live_link(backend, link_id)
        await backend.append([ev.LinkDeleted(id=link_id, deletedAt=utc_now())])
        link = await backend.get_link(link_id)
        assert link is not None
        return link

    @api.get(
        "/v1/orgs/{org}/links/{link_id}/history",
        operation_id="link_history",
        responses={200: {"model": schema.History}, **schema.responses(schema.NOT_FOUND)},
    )
    async def link_history(backend: Backend, link_id: LinkId) -> JSON:
        if await backend.get_link(link_id) is None:
            raise NotFound(f"no link {link_id!r}")
        return {"events": await backend.link_history(link_id)}

    @api.put(
        "/v1/orgs/{org}/links/{link_id}/tags/{name}",
        operation_id="tag_link",
        responses={200: {"model": schema.Link}, **schema.responses(schema.NOT_FOUND, schema.INVALID, writes=True)},
    )
    async def tag_link(backend: Backend, link_id: LinkId, name: TagName) -> JSON:
        return await backend.tag_link(link_id, name)

    @api.delete(
        "/v1/orgs/{org}/links/{link_id}/tags/{name}",
        operation_id="untag_link",
        responses={200: {"model": schema.Link}, **schema.responses(schema.NOT_FOUND, schema.INVALID, writes=True)},
    )
    async def untag_link(backend: Backend, link_id: LinkId, name: TagName) -> JSON:
        return await backend.untag_link(link_id, name)

    @api.delete(
        "/v1/orgs/{org}/links/{link_id}/suggestedTags/{name}",
        operation_id="dismiss_suggestion",
        responses={200: {"model": schema.Link}, **schema.responses(schema.NOT_FOUND, schema.INVALID, writes=True)},
    )
    async def dismiss_suggestion(backend: Backend, link_id: LinkId, name: TagName) -> JSON:
        return await backend.dismiss_suggestion(link_id, name)

    add_sync_socket(api)
    add_web_routes(api)
    default_openapi = api.openapi

    def openapi() -> dict[str, Any]:
        # Made once, on first request, after every route is added.
        return api.openapi_schema or schema.validation_errors_as_error_body(default_openapi())

    api.openapi = openapi  # type: ignore[method-assign]
    return api
