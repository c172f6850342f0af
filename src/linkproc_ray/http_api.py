"""The public HTTP contract (API.md) as a FastAPI app over a :class:`Gateway`.

No Ray here: the Serve adapter supplies a gateway of named actors, tests a
:class:`~linkproc_ray.gateway.LocalGateway`.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Final, Literal

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from .auth import Principal, TokenVerifier, valid_org_id
from .errors import (
    BatchTooLarge,
    Forbidden,
    InvalidEvent,
    InvalidURL,
    LinkprocError,
    ServerAhead,
    Unauthorized,
)
from .events import MAX_PUSH_BYTES, new_id, parse_push, utc_now
from .gateway import Gateway, OrgBackend
from .metrics import METRICS
from .pipeline.canonical import canonicalize_url, domain_of
from .types import JSON
from .ws_api import add_sync_socket

MAX_BODY_BYTES: Final = MAX_PUSH_BYTES + 64 * 1024
"""A push body may carry 1 MB of events plus its small envelope."""


def error_response(status: int, code: str, detail: str, **extra: Any) -> JSONResponse:
    """Every error body: ``{"error": code, "detail": text}`` plus optional fields."""
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": code, "detail": detail, **extra}, status_code=status, headers=headers)


class NewLink(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    url: str = Field(min_length=1, max_length=2048)
    source: str | None = Field(default=None, max_length=100)


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
    if not valid_org_id(org):
        raise InvalidURL(f"organization id {org!r} must match [A-Za-z0-9][A-Za-z0-9_-]{{0,63}}")
    principal.require_org(org)
    return principal


async def org_backend(request: Request, org: str) -> OrgBackend:
    principal_for(request, org)
    gateway: Gateway = request.app.state.gateway
    return await gateway.backend(org)


Backend = Annotated[OrgBackend, Depends(org_backend)]


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
        raise InvalidEvent(f"body is not valid JSON: {exc}", field="body") from None


def create_api() -> FastAPI:
    """The ingress app; set ``app.state.gateway`` and ``app.state.verifier`` before serving."""
    api = FastAPI(title="linkproc-ray", version="1", summary="Event-sourced link enrichment")

    @api.exception_handler(LinkprocError)
    async def _linkproc_error(request: Request, exc: LinkprocError) -> JSONResponse:
        if isinstance(exc, Unauthorized):
            return error_response(401, "unauthorized", str(exc))
        if isinstance(exc, Forbidden):
            return error_response(403, "forbidden", str(exc))
        if isinstance(exc, ServerAhead):
            return error_response(409, "server_ahead", str(exc), head=exc.head)
        if isinstance(exc, BatchTooLarge):
            return error_response(413, "too_large", str(exc))
        if isinstance(exc, InvalidEvent):
            status = 400 if exc.field == "body" else 422
            return error_response(status, "invalid_request", str(exc), event=exc.event, field=exc.field)
        if isinstance(exc, InvalidURL):
            status = 400 if "organization id" in str(exc) else 422
            return error_response(status, "invalid_request", str(exc))
        return error_response(503, "unavailable", f"{exc.code}: {exc}")

    @api.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first["loc"])
        return error_response(422, "invalid_request", f"{where}: {first['msg']}", field=where)

    @api.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "invalid_request", 401: "unauthorized", 403: "forbidden"}
        return error_response(exc.status_code, codes.get(exc.status_code, "invalid_request"), str(exc.detail))

    @api.get("/healthz")
    async def healthz() -> JSON:
        return {"status": "ok"}

    @api.get("/metrics", response_class=PlainTextResponse)
    async def metrics() -> Response:
        body, content_type = METRICS.render()
        return Response(body, media_type=content_type)

    @api.get("/v1/orgs/{org}/events")
    async def pull_events(
        backend: Backend,
        after: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
        wait: Annotated[float, Query(ge=0, le=30)] = 0,
    ) -> JSON:
        result = await backend.pull(after, limit, wait)
        METRICS.events_pulled.inc(len(result.events))
        return {"events": [e.to_json() for e in result.events], "head": result.head}

    @api.post("/v1/orgs/{org}/events")
    async def push_events(request: Request, backend: Backend) -> JSON:
        parent, events = parse_push(await read_json_body(request))
        result = await backend.push(parent, events)
        METRICS.events_pushed.inc(len(events))
        return {"head": result.head, "seqs": result.seqs}

    @api.post("/v1/orgs/{org}/links", status_code=201)
    async def create_link(request: Request, backend: Backend) -> JSONResponse:
        body = await read_json_body(request, limit=16 * 1024)
        try:
            new = NewLink.model_validate(body)
        except ValueError as exc:
            raise InvalidURL(f"body must be {{'url': 'https://…', 'source'?: str}}: {exc}") from None
        url = canonicalize_url(new.url)
        link, created = await backend.create_link(url, domain_of(url), new.source, new_id())
        return JSONResponse(link, status_code=201 if created else 200)

    @api.get("/v1/orgs/{org}/links")
    async def list_links(
        backend: Backend,
        status: Literal["unread", "completed"] | None = None,
        include_deleted: bool = False,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        cursor: Annotated[int | None, Query(ge=0)] = None,
    ) -> JSON:
        links, next_cursor = await backend.list_links(
            status=status, include_deleted=include_deleted, limit=limit, cursor=cursor
        )
        return {"links": links, "next_cursor": None if next_cursor is None else str(next_cursor)}

    async def live_link(backend: OrgBackend, link_id: str) -> JSON:
        link = await backend.get_link(link_id)
        if link is None or link["deletedAt"] is not None:
            raise StarletteHTTPException(404, f"no link {link_id!r}")
        return link

    @api.get("/v1/orgs/{org}/links/{link_id}")
    async def get_link(backend: Backend, link_id: str) -> JSON:
        link = await backend.get_link(link_id)
        if link is None:
            raise StarletteHTTPException(404, f"no link {link_id!r}")
        return link

    @api.post("/v1/orgs/{org}/links/{link_id}/reprocess", status_code=202)
    async def reprocess_link(backend: Backend, link_id: str) -> JSON:
        await live_link(backend, link_id)
        await backend.append([("v1.LinkReprocessRequested", {"linkId": link_id, "requestedAt": utc_now()})])
        return await live_link(backend, link_id)

    @api.delete("/v1/orgs/{org}/links/{link_id}")
    async def delete_link(backend: Backend, link_id: str) -> JSON:
        await live_link(backend, link_id)
        await backend.append([("v1.LinkDeleted", {"id": link_id, "deletedAt": utc_now()})])
        link = await backend.get_link(link_id)
        assert link is not None
        return link

    add_sync_socket(api)
    return api
