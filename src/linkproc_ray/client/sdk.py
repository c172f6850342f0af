"""The SDK's client: one org's replica with REST sync on demand or live sync over the WebSocket.

Commits apply locally at once and queue for push. On ``server_ahead`` the
client pulls, rebases its unconfirmed commits on top and pushes again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
import jwt
import websockets
from websockets.asyncio.client import ClientConnection

from linkproc_ray.client.models import ImportOutcome, Link
from linkproc_ray.client.replica import Replica
from linkproc_ray.client.status import SyncState, SyncStatus
from linkproc_ray.core import events as ev
from linkproc_ray.core import queries
from linkproc_ray.core.backoff import Backoff
from linkproc_ray.core.bookmarks import Entry
from linkproc_ray.core.events import Event, EventArgs, NewEvent, make, new_id, utc_now
from linkproc_ray.core.limits import MAX_IMPORT_LINKS, MAX_PULL_LIMIT
from linkproc_ray.core.search import search_links
from linkproc_ray.core.types import JSON
from linkproc_ray.core.urls import canonicalize_url, domain_of
from linkproc_ray.errors import (
    CLOSE_FORBIDDEN,
    CLOSE_UNAUTHORIZED,
    ConnectionLost,
    NotFound,
    PushRejected,
    RequestError,
    StoreError,
    TokenRefused,
    Unavailable,
)

log = logging.getLogger(__name__)

LONG_POLL: Final = 20.0
"""Seconds a REST fallback poll waits for news."""

SOCKET_MAX_FRAME: Final = 64 * 1024 * 1024
"""The largest server frame the client accepts (a backlog page of big events)."""


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

    async def record(self, args: EventArgs) -> NewEvent:
        """Commit a typed event (see :meth:`commit`)."""
        return await self.commit(args.NAME, args.to_json())

    async def add_link(self, url: str, source: str | None = None) -> Link:
        """Save a link (canonical URL); the live link with the same URL if there is one."""
        canonical = canonicalize_url(url)
        existing = await queries.find_live_link_by_url(self.replica.store, canonical)
        if existing is not None:
            return Link.from_json(existing)
        created = ev.LinkCreated(
            id=new_id(), url=canonical, domain=domain_of(canonical), createdAt=utc_now(), source=source
        )
        await self.record(created)
        link = await self.link(created.id)
        assert link is not None, "a committed LinkCreated must materialize"
        return link

    async def delete_link(self, link_id: str) -> None:
        await self.record(ev.LinkDeleted(id=link_id, deletedAt=utc_now()))

    async def complete_link(self, link_id: str) -> None:
        """Mark a link read."""
        await self.record(ev.LinkCompleted(id=link_id, completedAt=utc_now()))

    async def link(self, link_id: str) -> Link | None:
        data = await queries.get_link(self.replica.store, link_id)
        return None if data is None else Link.from_json(data)

    async def links(self, *, status: str | None = None, include_deleted: bool = False, limit: int = 200) -> list[Link]:
        """Links newest first, as this replica sees them now (pending commits included)."""
        rows, _ = await queries.list_links(
            self.replica.store, status=status, include_deleted=include_deleted, limit=limit
        )
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

    # -- commands answered by the server (the CLI's) ------------------------------
    #
    # These talk to the ingress at once and need no replica: a command-line run
    # should not pull the whole log to delete one link.

    async def import_links(
        self,
        entries: Sequence[Entry],
        *,
        source: str | None = "import",
        on_batch: Callable[[list[ImportOutcome]], None] | None = None,
        attempts: int = 5,
    ) -> list[ImportOutcome]:
        """Save a file's entries through ``POST /links:batch``, 1,000 at a time; one outcome per entry, in order.

        A batch refused for a passing cause (5xx, a dropped connection) is sent
        again: saving is idempotent by canonical URL, so a retry adds nothing twice.
        """
        outcomes: list[ImportOutcome] = []
        for start in range(0, len(entries), MAX_IMPORT_LINKS):
            chunk = entries[start : start + MAX_IMPORT_LINKS]
            body = {"links": [{"url": e.url, "tags": list(e.tags)} for e in chunk], "source": source}
            answer = await self._call_retrying("POST", f"/v1/orgs/{self.org}/links:batch", attempts, json=body)
            batch = [
                ImportOutcome(
                    position=chunk[r["index"]].position,
                    url=r["url"],
                    outcome=r["outcome"],
                    id=r.get("id"),
                    reason=r.get("reason"),
                )
                for r in answer["results"]
            ]
            outcomes.extend(batch)
            if on_batch is not None:
                on_batch(batch)
        return outcomes

    async def save_link(self, url: str, source: str | None = None) -> JSON:
        """Save a link on the server at once (``POST /links``): the new link, or the live one with the same URL."""
        body = {"url": url} if source is None else {"url": url, "source": source}
        answer: JSON = await self._call("POST", f"/v1/orgs/{self.org}/links", json=body)
        return answer

    async def list_remote(self, *, limit: int = 50) -> list[JSON]:
        """The server's newest links (``GET /links``)."""
        answer: JSON = await self._call("GET", f"/v1/orgs/{self.org}/links", params={"limit": limit})
        links: list[JSON] = answer["links"]
        return links

    async def fetch_link(self, link_id: str) -> JSON:
        """The server's ``Link`` (deleted ones too); :class:`NotFound` if there is none."""
        answer: JSON = await self._call("GET", f"/v1/orgs/{self.org}/links/{quote(link_id, safe='')}")
        return answer

    async def link_history(self, link_id: str) -> list[JSON]:
        """The events about a link, oldest first, as the server's log holds them."""
        answer: JSON = await self._call("GET", f"/v1/orgs/{self.org}/links/{quote(link_id, safe='')}/history")
        events: list[JSON] = answer["events"]
        return events

    async def search(self, q: str, *, limit: int = 20) -> list[JSON]:
        """Full-text search of this replica (offline, pending commits included): the server's ranking and snippets."""
        return await search_links(self.replica.store, q, limit=limit)

    async def remove_link(self, link_id: str) -> JSON:
        """Delete a link on the server (``v1.LinkDeleted``)."""
        answer: JSON = await self._call("DELETE", f"/v1/orgs/{self.org}/links/{quote(link_id, safe='')}")
        return answer

    async def reprocess_link(self, link_id: str) -> JSON:
        """Ask the server to fetch and summarize a link again (``v1.LinkReprocessRequested``)."""
        answer: JSON = await self._call("POST", f"/v1/orgs/{self.org}/links/{quote(link_id, safe='')}/reprocess")
        return answer

    async def tag_link(self, link_id: str, name: str) -> JSON:
        """Tag a link (accepting a suggested tag is the same): the tag is created if the org lacks it."""
        answer: JSON = await self._call("PUT", self._tag_path(link_id, "tags", name))
        return answer

    async def untag_link(self, link_id: str, name: str) -> JSON:
        answer: JSON = await self._call("DELETE", self._tag_path(link_id, "tags", name))
        return answer

    async def dismiss_suggestion(self, link_id: str, name: str) -> JSON:
        """Dismiss a tag the summarizer suggested (``v1.TagSuggestionDismissed``)."""
        answer: JSON = await self._call("DELETE", self._tag_path(link_id, "suggestedTags", name))
        return answer

    async def find(self, q: str, *, limit: int = 20) -> list[JSON]:
        """The server's full-text search: ranked links, each with its ``search`` snippet."""
        answer: JSON = await self._call("GET", f"/v1/orgs/{self.org}/links", params={"q": q, "limit": limit})
        links: list[JSON] = answer["links"]
        return links

    async def export(self, format: str = "json") -> str:
        """The org's links as ``json`` or Netscape ``html`` (``GET /export``)."""
        if self._http is None:
            raise StoreError("client is not open")
        response = await self._request("GET", f"/v1/orgs/{self.org}/export", params={"format": format})
        self._raise_for_error(response)
        return response.text

    def _tag_path(self, link_id: str, kind: str, name: str) -> str:
        return f"/v1/orgs/{self.org}/links/{quote(link_id, safe='')}/{kind}/{quote(name, safe='')}"

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self._request(method, path, **kwargs)
        self._raise_for_error(response)
        return response.json()

    async def _call_retrying(self, method: str, path: str, attempts: int, **kwargs: Any) -> Any:
        for attempt in range(attempts):
            try:
                return await self._call(method, path, **kwargs)
            except (httpx.HTTPStatusError, httpx.TransportError) as exc:
                if attempt == attempts - 1:
                    raise Unavailable(f"{method} {path}: {exc}") from exc
                await asyncio.sleep(self.backoff.delay(attempt, self._rng))
        raise AssertionError("unreachable: the last attempt returns or raises")

    @staticmethod
    def _raise_for_error(response: httpx.Response) -> None:
        """A 4xx answer as the error tree's own: :class:`NotFound`, else :class:`RequestError` with its detail."""
        if response.status_code < 400:
            return
        try:
            body = response.json()
        except ValueError:
            body = {"error": "invalid_request", "detail": response.text}
        message = f"{body.get('error')}: {body.get('detail')}"
        if response.status_code == 404:
            raise NotFound(message)
        raise RequestError(message)

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
            raise TokenRefused(f"{response.status_code}: {response.text}")
        if response.status_code >= 500:
            response.raise_for_status()
        return response

    async def _confirm_pushed(self, parent: int, batch: list[NewEvent], seqs: list[int]) -> bool:
        """Confirm our accepted batch locally when it sits right after our head; else the caller pulls."""
        if parent != self.head or seqs != list(range(parent + 1, parent + 1 + len(batch))):
            return False
        await self._confirm([e.at(seq, parent) for seq, e in zip(seqs, batch, strict=False)])
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
            except TokenRefused as exc:
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
            max_size=SOCKET_MAX_FRAME,
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
        if socket.close_code in (CLOSE_UNAUTHORIZED, CLOSE_FORBIDDEN):
            raise TokenRefused(f"{socket.close_code}: {socket.close_reason}")
        raise ConnectionLost(f"socket closed ({socket.close_code} {socket.close_reason})")

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
                        {
                            "type": "push",
                            "requestId": request_id,
                            "parent": parent,
                            "events": [e.to_json() for e in batch],
                        }
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
