"""The live sync socket of docs/API.md, ``WS /v1/orgs/{org}/sync``, over the same gateway as the REST routes.

Each socket is one :class:`SyncSession`; the org's events reach it through the
process-wide :class:`~linkproc_ray.sync.live.LiveHub`, so a replica follows each org once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Final

from fastapi import FastAPI, WebSocket
from starlette.websockets import WebSocketDisconnect

from linkproc_ray.api.auth import TokenVerifier
from linkproc_ray.api.metrics import METRICS
from linkproc_ray.core.events import parse_push
from linkproc_ray.core.limits import MAX_BODY_BYTES
from linkproc_ray.core.types import JSON
from linkproc_ray.errors import (
    CLOSE_SERVER_ERROR,
    CLOSE_UNAUTHORIZED,
    AuthError,
    BatchTooLarge,
    LinkprocError,
    MalformedBody,
    RequestError,
    ServerAhead,
    Unavailable,
)
from linkproc_ray.sync.live import LiveHub, Subscription
from linkproc_ray.sync.ports import Gateway

log = logging.getLogger(__name__)

PUSH_REJECTIONS: Final = frozenset({ServerAhead.http_error, RequestError.http_error})
"""The two ``error`` values of ``push_rejected``; every other refused push is an ``invalid_request``."""


@dataclass(frozen=True, slots=True)
class Closing:
    """How a session ends: an optional ``error`` message, then a close frame."""

    code: int
    reason: str
    message: JSON | None = field(default=None)

    @classmethod
    def for_error(cls, exc: LinkprocError) -> Closing:
        """The close an error of the tree asks for; protocol and server errors say why in an ``error`` frame first."""
        if isinstance(exc, AuthError):
            return cls(exc.close_code, str(exc))
        return cls(exc.close_code, exc.http_error, {"type": "error", "error": exc.http_error, "detail": str(exc)})


def _token(websocket: WebSocket) -> str | None:
    # The header wins; browsers cannot set it, so they use the query parameter.
    scheme, _, value = websocket.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return websocket.query_params.get("token") or None


def _after(websocket: WebSocket) -> int:
    raw = websocket.query_params.get("after", "0")
    if not raw.isdigit():
        raise MalformedBody(f"after must be a non-negative integer, got {raw!r}")
    return int(raw)


def _detail(exc: Exception) -> str:
    # An error raised in an actor arrives wrapped, and its str() is the remote
    # traceback; clients get the original message only (``cause`` is the original).
    return str(getattr(exc, "cause", exc))


class SyncSession:
    """One authenticated socket: forwards the org's pages, answers pushes and pings, closes at token expiry.

    Everything that goes wrong ends this session only; other sockets of the org never notice.
    """

    def __init__(self, websocket: WebSocket, org: str, hub: LiveHub, verifier: TokenVerifier) -> None:
        self.websocket = websocket
        self.org = org
        self._hub = hub
        self._verifier = verifier
        self._send_lock = asyncio.Lock()

    async def run(self) -> None:
        await self.websocket.accept()
        try:
            closing = await self._session()
        except WebSocketDisconnect:
            return
        except Exception:  # session boundary: any failure closes only this socket
            log.exception("sync session of %s failed", self.org)
            closing = Closing(
                CLOSE_SERVER_ERROR,
                "server error",
                {"type": "error", "error": Unavailable.http_error, "detail": "server error"},
            )
        if closing is not None:
            await self._close(closing)

    async def _session(self) -> Closing | None:
        try:
            principal = self._verifier.verify(_token(self.websocket))
            # A malformed org id can never be a token's orgId: it is refused as another org's.
            principal.require_org(self.org)
            after = _after(self.websocket)
        except LinkprocError as exc:
            return Closing.for_error(exc)
        async with self._hub.subscribe(self.org, after) as subscription:
            tasks = [
                asyncio.create_task(self._forward(subscription)),
                asyncio.create_task(self._receive(subscription)),
                asyncio.create_task(self._expire(principal.expires_at)),
            ]
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            return next(iter(done)).result()

    async def _forward(self, subscription: Subscription) -> Closing | None:
        try:
            async for page in subscription.pages():
                METRICS.events_pulled.inc(len(page.events))
                await self._send({"type": "events", "events": [e.to_json() for e in page.events], "head": page.head})
        except (RequestError, Unavailable) as exc:
            return Closing.for_error(exc)
        raise AssertionError("a subscription's pages never end")

    async def _expire(self, expires_at: float) -> Closing:
        await asyncio.sleep(max(0.0, expires_at - time.time()))
        return Closing(CLOSE_UNAUTHORIZED, "token expired")

    async def _receive(self, subscription: Subscription) -> Closing | None:
        while True:
            frame = await self.websocket.receive()
            if frame["type"] == "websocket.disconnect":
                return None
            text: str | None = frame.get("text")
            size = len(text.encode()) if text is not None else len(frame.get("bytes") or b"")
            try:
                if size > MAX_BODY_BYTES:
                    raise BatchTooLarge(f"a frame holds at most {MAX_BODY_BYTES} bytes")
                await self._answer(self._decode(text), subscription)
            except RequestError as exc:
                return Closing.for_error(exc)
            except Unavailable as exc:
                # A full disk or a damaged log: the error frame names the cause, the close says server error.
                log.warning("sync socket of %s closed: %s", self.org, exc)
                return Closing.for_error(exc)

    @staticmethod
    def _decode(text: str | None) -> JSON:
        if text is None:
            raise MalformedBody("frames must be JSON text, not binary")
        try:
            message = json.loads(text)
        except json.JSONDecodeError as exc:
            raise MalformedBody(f"frame is not valid JSON: {exc}") from None
        except RecursionError:
            raise MalformedBody("frame is nested too deeply to be parsed") from None
        if not isinstance(message, dict):
            raise MalformedBody("a frame must be a JSON object with a type")
        return message

    async def _answer(self, message: JSON, subscription: Subscription) -> None:
        kind = message.get("type")
        if kind == "ping":
            await self._send({"type": "pong", "head": subscription.head})
        elif kind == "push":
            await self._push(message, subscription)
        else:
            raise MalformedBody(f"unknown message type {kind!r}; expected 'push' or 'ping'")

    async def _push(self, message: JSON, subscription: Subscription) -> None:
        request_id = message.get("requestId")
        if not isinstance(request_id, (str, int)) or isinstance(request_id, bool):
            raise MalformedBody("a push needs a requestId (string or integer)")
        try:
            parent, events = parse_push(message)
            result = await subscription.backend.push(parent, events)
        except (ServerAhead, RequestError) as exc:
            # docs/API.md names two rejections for a socket push; any other refused batch
            # (an over-limit one included) is an invalid request.
            error = exc.http_error if exc.http_error in PUSH_REJECTIONS else RequestError.http_error
            head = exc.head if isinstance(exc, ServerAhead) else subscription.head
            extra = {k: v for k, v in exc.details().items() if k != "head"}
            if isinstance(exc, BatchTooLarge):
                extra["field"] = "events"
            await self._reject(request_id, error, head, _detail(exc), **extra)
        else:
            METRICS.events_pushed.inc(len(events))
            await self._send({"type": "push_ok", "requestId": request_id, "head": result.head, "seqs": result.seqs})

    async def _reject(self, request_id: str | int, error: str, head: int, detail: str, **extra: Any) -> None:
        await self._send(
            {"type": "push_rejected", "requestId": request_id, "error": error, "head": head, "detail": detail, **extra}
        )

    async def _send(self, message: JSON) -> None:
        # Two tasks write (pages and answers); a frame must go out whole.
        async with self._send_lock:
            await self.websocket.send_text(json.dumps(message, separators=(",", ":")))

    async def _close(self, closing: Closing) -> None:
        try:
            if closing.message is not None:
                await self._send(closing.message)
            await self.websocket.close(closing.code, closing.reason)
        except (WebSocketDisconnect, RuntimeError, OSError):
            # The peer left first; there is nobody to tell.
            log.debug("socket of %s gone before close %d", self.org, closing.code)


def live_hub(api: FastAPI) -> LiveHub:
    """This process's hub for ``api``, made on first use from ``api.state.gateway``."""
    hub: LiveHub | None = getattr(api.state, "live_hub", None)
    if hub is None:
        gateway: Gateway = api.state.gateway
        hub = LiveHub(gateway)
        api.state.live_hub = hub
    return hub


def add_sync_socket(api: FastAPI) -> None:
    """Register ``WS /v1/orgs/{org}/sync`` on ``api`` (uses ``api.state.gateway`` and ``.verifier``)."""

    @api.websocket("/v1/orgs/{org}/sync")
    async def sync_socket(websocket: WebSocket, org: str) -> None:
        app: FastAPI = websocket.app
        await SyncSession(websocket, org, live_hub(app), app.state.verifier).run()
