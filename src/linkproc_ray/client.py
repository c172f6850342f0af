"""Python SDK: a local SQLite replica of one org's log that works offline, syncs live and converges.

Commits apply locally at once and queue for push. The replica keeps the
confirmed log; its tables are always confirmed + pending, rebuilt from both
whenever the confirmed part moves under unconfirmed commits (the rebase).
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import httpx
import jwt
import websockets
from websockets.asyncio.client import ClientConnection

from . import queries
from .errors import StoreError, SyncError
from .events import (
    MAX_PUSH_BYTES,
    MAX_PUSH_EVENTS,
    Event,
    NewEvent,
    make,
    new_id,
    utc_now,
)
from .materialize import TABLES, statements_for
from .pipeline.canonical import canonicalize_url, domain_of
from .store import EventStore
from .sync_backend import MAX_PULL_LIMIT
from .types import JSON

log = logging.getLogger(__name__)

PUSH_BYTES: Final = MAX_PUSH_BYTES - 64 * 1024
"""Bytes of events per push: below the server's limit, with room for the envelope."""

LONG_POLL: Final = 20.0
"""Seconds a REST fallback poll waits for news."""

_PENDING_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS sdk_pending (
    pos INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    args TEXT NOT NULL,
    client_id TEXT NOT NULL,
    session_id TEXT NOT NULL
);
"""
_LOG_PAGE: Final = 5000


# -- typed read model ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Processing:
    """Where the enrichment of a link stands (``status`` is ``None`` until the processor starts)."""

    status: str | None
    error: str | None
    attempts: int
    updated_at: str | None


@dataclass(frozen=True, slots=True)
class Metadata:
    """The newest metadata snapshot of a link's page."""

    title: str | None
    description: str | None
    image: str | None
    favicon: str | None
    site_name: str | None
    canonical_url: str | None
    fetched_at: str


@dataclass(frozen=True, slots=True)
class Summary:
    """The newest summary of a link's page."""

    text: str
    model: str
    summarized_at: str


@dataclass(frozen=True, slots=True)
class Link:
    """A saved link as every replica materializes it."""

    id: str
    url: str
    domain: str
    status: str
    source: str | None
    created_at: str
    completed_at: str | None
    deleted_at: str | None
    processing: Processing
    metadata: Metadata | None
    summary: Summary | None

    @classmethod
    def from_json(cls, data: JSON) -> Link:
        """From the API's ``Link`` object."""
        p, m, s = data["processing"], data["metadata"], data["summary"]
        return cls(
            id=data["id"],
            url=data["url"],
            domain=data["domain"],
            status=data["status"],
            source=data.get("source"),
            created_at=data["createdAt"],
            completed_at=data["completedAt"],
            deleted_at=data["deletedAt"],
            processing=Processing(p["status"], p["error"], p.get("attempts", 0), p["updatedAt"]),
            metadata=None
            if m is None
            else Metadata(
                m["title"], m["description"], m["image"], m["favicon"], m["siteName"], m["canonicalUrl"], m["fetchedAt"]
            ),
            summary=None if s is None else Summary(s["text"], s["model"], s["summarizedAt"]),
        )


# -- the local replica --------------------------------------------------------


class Replica:
    """The local store: confirmed log, pending commits, and tables equal to confirmed + pending.

    Every write holds one lock and one transaction, so readers never see
    confirmed events without the pending ones re-applied on top.
    """

    def __init__(self, path: str | Path) -> None:
        self.store = EventStore(path)
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        await self.store.open()
        await self.store.db.executescript(_PENDING_SCHEMA)

    async def close(self) -> None:
        await self.store.close()

    @property
    def head(self) -> int:
        """The last confirmed seq."""
        return self.store.head

    async def meta(self, key: str, default: Callable[[], str]) -> str:
        """A persisted value of this replica, made by ``default`` on first use."""
        value = await self.store.get_meta(key)
        if value is None:
            value = default()
            await self.store.set_meta(key, value)
        return value

    async def pending(self) -> list[NewEvent]:
        """Unconfirmed commits, oldest first."""
        rows = await self.store.fetchall(
            "SELECT id, name, args, client_id, session_id FROM sdk_pending ORDER BY pos", in_transaction=True
        )
        return [NewEvent(r["id"], r["name"], json.loads(r["args"]), r["client_id"], r["session_id"]) for r in rows]

    async def pending_batch(self, max_events: int = MAX_PUSH_EVENTS, max_bytes: int = PUSH_BYTES) -> list[NewEvent]:
        """The oldest pending commits that fit one push."""
        return (await self.push_batch(max_events, max_bytes))[1]

    async def push_batch(self, max_events: int = MAX_PUSH_EVENTS, max_bytes: int = PUSH_BYTES) -> tuple[int, list[NewEvent]]:
        """``(parent, batch)``: the head and the oldest pending commits that fit one push, read as one snapshot.

        Holds the lock, so a :meth:`confirm` running meanwhile is seen whole or
        not at all: never its new head with commits it is about to unqueue.
        """
        async with self._lock:
            return self.head, self._fit(await self.pending(), max_events, max_bytes)

    @staticmethod
    def _fit(pending: list[NewEvent], max_events: int, max_bytes: int) -> list[NewEvent]:
        batch: list[NewEvent] = []
        size = 2
        for event in pending:
            size += len(json.dumps(event.to_json(), separators=(",", ":")).encode()) + 1
            if len(batch) >= max_events or (batch and size > max_bytes):
                break
            batch.append(event)
        return batch

    async def commit(self, event: NewEvent) -> None:
        """Apply a new local event to the tables at once and queue it for push."""
        async with self._lock, self.store.transaction() as db:
            for sql, params in statements_for(_as_pending(event, self.head)):
                await db.execute(sql, params)
            await db.execute(
                "INSERT INTO sdk_pending (id, name, args, client_id, session_id) VALUES (?, ?, ?, ?, ?)",
                (event.id, event.name, _dump(event.args), event.client_id, event.session_id),
            )

    async def confirm(self, events: Sequence[Event]) -> int:
        """Add confirmed events (already known ones are skipped); returns how many were new.

        Without pending commits the events are applied incrementally. With
        pending ones, the confirmed ones among them leave the queue and the
        tables are rebuilt as the whole confirmed log plus what stays pending.
        Raises :class:`SyncError` on a gap in seqs.
        """
        async with self._lock:
            fresh = [e for e in events if e.seq > self.head]
            if not fresh:
                return 0
            if fresh[0].seq != self.head + 1:
                raise SyncError(f"got seq {fresh[0].seq} after head {self.head}: a gap")
            pending = await self.pending()
            async with self.store.transaction() as db:
                await self.store.apply(db, fresh)
                if pending:
                    confirmed = {e.id for e in fresh}
                    await db.executemany("DELETE FROM sdk_pending WHERE id = ?", [(i,) for i in confirmed])
                    await self._rebuild(db, [p for p in pending if p.id not in confirmed])
            return len(fresh)

    async def _rebuild(self, db: Any, pending: list[NewEvent]) -> None:
        # The simplest correct rebase: replay the confirmed log, then the pending commits.
        for table in TABLES:
            await db.execute(f"DELETE FROM {table}")
        after = 0
        while True:
            rows = await self.store.fetchall(
                "SELECT seq, parent, id, name, args, client_id, session_id FROM events "
                "WHERE seq > ? ORDER BY seq LIMIT ?",
                (after, _LOG_PAGE),
                in_transaction=True,
            )
            for row in rows:
                event = Event(
                    row["seq"], row["parent"], row["id"], row["name"], json.loads(row["args"]),
                    row["client_id"], row["session_id"],
                )
                for sql, params in statements_for(event):
                    await db.execute(sql, params)
            if len(rows) < _LOG_PAGE:
                break
            after = rows[-1]["seq"]
        for new_event in pending:
            for sql, params in statements_for(_as_pending(new_event, self.head)):
                await db.execute(sql, params)


def _as_pending(event: NewEvent, head: int) -> Event:
    # Materializers read only the args; a pending event has no seq of its own yet.
    return Event(0, head, event.id, event.name, event.args, event.client_id, event.session_id)


def _dump(args: JSON) -> str:
    return json.dumps(args, separators=(",", ":"), sort_keys=True)


# -- sync state ---------------------------------------------------------------


class SyncState(enum.Enum):
    """Where the live sync stands; :attr:`SyncStatus.pending_not_draining` flags a stuck queue."""

    OFFLINE = "offline"
    """Not syncing (not started, or stopped)."""
    CONNECTING = "connecting"
    CATCHING_UP = "catching_up"
    """Connected; fetching the backlog before pushing."""
    LIVE = "live"
    """Connected over the WebSocket and caught up."""
    POLLING = "polling"
    """Connected over the REST fallback (long polls)."""
    RETRYING = "retrying"
    """Lost the connection; waiting out the backoff before the next attempt."""
    UNAUTHORIZED = "unauthorized"
    """The server refused the token (4401/4403, 401/403); syncing stopped."""


@dataclass(frozen=True, slots=True)
class SyncStatus:
    """A snapshot of the client's sync, for display and alerts."""

    state: SyncState
    head: int
    pending: int
    oldest_pending_age: float | None
    last_error: str | None
    pending_not_draining: bool
    """Commits older than the alarm are still unconfirmed although the client is syncing (or refused)."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """Reconnect delays: exponential from ``initial`` to ``maximum``, with jitter in the upper half."""

    initial: float = 1.0
    maximum: float = 30.0
    factor: float = 2.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        """The wait before retry number ``attempt`` (0-based): within [ceiling/2, ceiling]."""
        ceiling = min(self.maximum, self.initial * self.factor**attempt)
        return rng.uniform(ceiling / 2, ceiling)


class PushRejected(SyncError):
    """The server refused pending commits as invalid: they stay queued and the status says so."""


class _Refused(Exception):
    """The server refused the token: retrying cannot help."""


@dataclass
class _SocketSession:
    """What one WebSocket connection knows: when it may push, and what is in flight."""

    caught_up_at: int | None = None
    ahead_until: int = 0
    in_flight: tuple[str, int, list[NewEvent]] | None = None
    blocked: bool = False


# -- the client ---------------------------------------------------------------


class LinkprocClient:
    """One org's replica with sync: REST (:meth:`sync`) on demand, or live (:meth:`start`).

    :param server: base URL of the ingress, e.g. ``http://127.0.0.1:8000``.
    :param token: a JWT for the org (the org is read from its ``orgId``).
    :param path: the replica's SQLite file (``":memory:"`` for a throwaway one).
    :param drain_alarm: seconds after which unconfirmed commits on a connected
        client count as not draining.
    """

    def __init__(
        self,
        server: str,
        token: str,
        *,
        path: str | Path = ":memory:",
        drain_alarm: float = 30.0,
        backoff: Backoff = Backoff(),
        prefer_websocket: bool = True,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.server = server.rstrip("/")
        self.token = token
        self.org = str(jwt.decode(token, options={"verify_signature": False})["orgId"])
        self.replica = Replica(path)
        self.drain_alarm = drain_alarm
        self.backoff = backoff
        self.prefer_websocket = prefer_websocket
        self._clock = clock
        self._rng = rng or random.Random()
        self._http: httpx.AsyncClient | None = None
        self._state = SyncState.OFFLINE
        self._last_error: str | None = None
        self._queued_at: dict[str, float] = {}
        self._wake = asyncio.Event()
        self._changed = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._client_id = ""
        self._session_id = new_id()

    async def open(self) -> LinkprocClient:
        """Open (or create) the replica; pending commits from an earlier run are queued again."""
        await self.replica.open()
        self._client_id = await self.replica.meta("sdk_client_id", lambda: f"sdk:{new_id()}")
        now = self._clock()
        self._queued_at = {e.id: now for e in await self.replica.pending()}
        self._http = httpx.AsyncClient(
            base_url=self.server,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=httpx.Timeout(15.0, read=LONG_POLL + 15.0),
        )
        return self

    async def close(self) -> None:
        await self.stop()
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        await self.replica.close()

    async def __aenter__(self) -> LinkprocClient:
        return await self.open()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- local writes and reads ------------------------------------------------

    @property
    def head(self) -> int:
        return self.replica.head

    async def commit(self, name: str, args: JSON) -> NewEvent:
        """Validate, apply locally at once, and queue for push; works offline."""
        event = make(name, args, client_id=self._client_id, session_id=self._session_id)
        await self.replica.commit(event)
        self._queued_at[event.id] = self._clock()
        self._wake.set()
        self._notify()
        return event

    async def add_link(self, url: str, source: str | None = None) -> Link:
        """Save a link (canonical URL); the live link with the same URL if there is one."""
        canonical = canonicalize_url(url)
        existing = await queries.find_live_link_by_url(self.replica.store, canonical)
        if existing is not None:
            return Link.from_json(existing)
        args: JSON = {"id": new_id(), "url": canonical, "domain": domain_of(canonical), "createdAt": utc_now()}
        if source is not None:
            args["source"] = source
        await self.commit("v1.LinkCreated", args)
        link = await self.link(args["id"])
        assert link is not None, "a committed LinkCreated must materialize"
        return link

    async def delete_link(self, link_id: str) -> None:
        await self.commit("v1.LinkDeleted", {"id": link_id, "deletedAt": utc_now()})

    async def complete_link(self, link_id: str) -> None:
        """Mark a link read."""
        await self.commit("v1.LinkCompleted", {"id": link_id, "completedAt": utc_now()})

    async def link(self, link_id: str) -> Link | None:
        data = await queries.get_link(self.replica.store, link_id)
        return None if data is None else Link.from_json(data)

    async def links(self, *, status: str | None = None, include_deleted: bool = False, limit: int = 200) -> list[Link]:
        """Links newest first, as this replica sees them now (pending commits included)."""
        rows, _ = await queries.list_links(self.replica.store, status=status, include_deleted=include_deleted, limit=limit)
        return [Link.from_json(row) for row in rows]

    async def dump_tables(self) -> dict[str, list[tuple[Any, ...]]]:
        return await self.replica.store.dump_tables()

    async def wait_for_change(self, timeout: float | None = None) -> bool:
        """Wait until the tables change (a commit or confirmed events); ``False`` on timeout."""
        signal = self._changed
        try:
            await asyncio.wait_for(signal.wait(), timeout)
        except TimeoutError:
            return False
        return True

    @property
    def status(self) -> SyncStatus:
        pending = len(self._queued_at)
        age = self._clock() - min(self._queued_at.values()) if pending else None
        return SyncStatus(
            state=self._state,
            head=self.head,
            pending=pending,
            oldest_pending_age=age,
            last_error=self._last_error,
            pending_not_draining=age is not None and age >= self.drain_alarm and self._state is not SyncState.OFFLINE,
        )

    # -- REST sync --------------------------------------------------------------

    async def sync(self) -> int:
        """One REST round: fetch everything new (in pages), then push every pending commit.

        A ``server_ahead`` answer makes it pull and rebase, then push again.
        Returns how many confirmed events arrived from the server. Raises
        :class:`PushRejected` if the server refuses pending commits as invalid.
        """
        fetched = await self._pull_all()
        while True:
            parent, batch = await self.replica.push_batch()
            if not batch:
                return fetched
            response = await self._request(
                "POST", f"/v1/orgs/{self.org}/events", json={"parent": parent, "events": [e.to_json() for e in batch]}
            )
            body = response.json()
            if response.status_code == 409:
                fetched += await self._pull_all()
            elif response.status_code >= 400:
                self._last_error = f"{body.get('error')}: {body.get('detail')}"
                raise PushRejected(self._last_error)
            elif not await self._confirm_pushed(parent, batch, body["seqs"]):
                fetched += await self._pull_all()

    async def _pull_all(self) -> int:
        fetched = 0
        while True:
            body = (await self._pull(wait=0.0)).json()
            events = [Event.from_json(e) for e in body["events"]]
            fetched += await self._confirm(events)
            if not events or events[-1].seq >= body["head"]:
                return fetched

    async def _pull(self, wait: float) -> httpx.Response:
        params = {"after": self.head, "limit": MAX_PULL_LIMIT, "wait": wait}
        return await self._request("GET", f"/v1/orgs/{self.org}/events", params=params)

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if self._http is None:
            raise StoreError("client is not open")
        response = await self._http.request(method, path, **kwargs)
        if response.status_code in (401, 403):
            raise _Refused(f"{response.status_code}: {response.text}")
        if response.status_code >= 500:
            response.raise_for_status()
        return response

    async def _confirm_pushed(self, parent: int, batch: list[NewEvent], seqs: list[int]) -> bool:
        """Confirm our accepted batch locally when it sits right after our head; else the caller pulls."""
        if parent != self.head or seqs != list(range(parent + 1, parent + 1 + len(batch))):
            return False
        await self._confirm(
            [Event(seq, parent, e.id, e.name, e.args, e.client_id, e.session_id) for seq, e in zip(seqs, batch)]
        )
        return True

    async def _confirm(self, events: list[Event]) -> int:
        added = await self.replica.confirm(events)
        if added:
            for event in events:
                self._queued_at.pop(event.id, None)
            self._notify()
        return added

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    # -- live sync --------------------------------------------------------------

    def start(self) -> None:
        """Sync live in the background until :meth:`stop`: WebSocket first, REST long polls as fallback."""
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run(), name=f"linkproc-sync:{self.org}")

    async def stop(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)
            self._runner = None
        if self._state is not SyncState.UNAUTHORIZED:
            self._state = SyncState.OFFLINE

    async def _run(self) -> None:
        attempt = 0
        use_socket = self.prefer_websocket
        while True:
            self._state = SyncState.CONNECTING
            reached = self.head
            try:
                if use_socket:
                    await self._socket_session()
                else:
                    await self._rest_session()
            except _Refused as exc:
                self._state, self._last_error = SyncState.UNAUTHORIZED, str(exc)
                return
            except websockets.InvalidStatus as exc:
                # The handshake got a plain HTTP answer (e.g. a proxy without WebSockets): poll instead.
                self._last_error = f"websocket refused: {exc}"
                use_socket = False
            except Exception as exc:  # noqa: BLE001 - loop boundary: whatever broke the session, back off and reconnect
                log.info("sync session of %s ended: %s", self.org, exc)
                self._last_error = f"{type(exc).__name__}: {exc}"
                use_socket = self.prefer_websocket
            # A connection that got somewhere starts the backoff over.
            if self.head > reached or self._state is SyncState.LIVE:
                attempt = 0
            self._state = SyncState.RETRYING
            await asyncio.sleep(self.backoff.delay(attempt, self._rng))
            attempt += 1

    def _socket_url(self) -> str:
        parts = urlsplit(self.server)
        scheme = "wss" if parts.scheme == "https" else "ws"
        return urlunsplit((scheme, parts.netloc, f"{parts.path}/v1/orgs/{self.org}/sync", f"after={self.head}", ""))

    async def _socket_session(self) -> None:
        async with websockets.connect(
            self._socket_url(),
            additional_headers={"Authorization": f"Bearer {self.token}"},
            max_size=64 * 1024 * 1024,
            open_timeout=15,
        ) as socket:
            self._state = SyncState.CATCHING_UP
            session = _SocketSession()
            pusher = asyncio.create_task(self._socket_pusher(socket, session))
            try:
                async for raw in socket:
                    await self._on_message(json.loads(raw), session)
            except websockets.ConnectionClosedError:
                pass  # the close code, read below, says what to do
            finally:
                pusher.cancel()
                await asyncio.gather(pusher, return_exceptions=True)
        if socket.close_code in (4401, 4403):
            raise _Refused(f"{socket.close_code}: {socket.close_reason}")
        raise ConnectionError(f"socket closed ({socket.close_code} {socket.close_reason})")

    async def _on_message(self, message: JSON, session: _SocketSession) -> None:
        kind = message.get("type")
        if kind == "events":
            await self._confirm([Event.from_json(e) for e in message["events"]])
            if session.caught_up_at is None:
                session.caught_up_at = message["head"]
            if self.head >= session.caught_up_at:
                self._state = SyncState.LIVE
        elif kind == "push_ok" and session.in_flight and session.in_flight[0] == message["requestId"]:
            _, parent, batch = session.in_flight
            # The batch stays in flight until it has left the pending queue: clearing it
            # first would let the pusher, woken by a commit during the confirm, read the
            # accepted events as still pending and push them again next to new ones,
            # which the server refuses ("part of this batch is already stored") for good.
            if not await self._confirm_pushed(parent, batch, message["seqs"]):
                # Accepted, but not right after our head: wait for the stream to bring it.
                session.ahead_until = max(message["seqs"], default=0)
            session.in_flight = None
        elif kind == "push_rejected":
            session.in_flight = None
            if message["error"] == "server_ahead":
                session.ahead_until = message["head"]
            else:
                session.blocked = True
                self._last_error = f"{message['error']}: {message['detail']}"
        elif kind == "error":
            self._last_error = f"{message.get('error')}: {message.get('detail')}"
        self._wake.set()

    async def _socket_pusher(self, socket: ClientConnection, session: _SocketSession) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            ready = (
                session.in_flight is None
                and not session.blocked
                and session.caught_up_at is not None
                and self.head >= max(session.caught_up_at, session.ahead_until)
            )
            parent, batch = await self.replica.push_batch() if ready else (self.head, [])
            if batch:
                request_id = new_id()
                session.in_flight = (request_id, parent, batch)
                await socket.send(
                    json.dumps(
                        {"type": "push", "requestId": request_id, "parent": parent, "events": [e.to_json() for e in batch]}
                    )
                )

    async def _rest_session(self) -> None:
        self._state = SyncState.POLLING
        while True:
            # Cleared before the round, so a commit made during it wakes the next one.
            self._wake.clear()
            try:
                await self.sync()
            except PushRejected:
                log.warning("pending commits refused: %s", self._last_error)
            poll = asyncio.create_task(self._pull(wait=LONG_POLL))
            woken = asyncio.create_task(self._wake.wait())
            try:
                done, _ = await asyncio.wait({poll, woken}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                woken.cancel()
                if not poll.done():
                    poll.cancel()
                    await asyncio.gather(poll, return_exceptions=True)
            if poll in done:
                body = poll.result().json()
                await self._confirm([Event.from_json(e) for e in body["events"]])
