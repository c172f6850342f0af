"""The authority of one org's log: orders events, stores them durably, serves pulls.

Writes go through one writer task that group-commits whatever is queued into
a single transaction (one fsync for many pushes); every caller is answered
only after that commit. Reads (pulls, queries) use the same WAL file.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

from linkproc_ray.core import events as ev
from linkproc_ray.core import queries
from linkproc_ray.core.bookmarks import NewBookmark, tag_name
from linkproc_ray.core.events import (
    POKE_EVENTS,
    Event,
    EventArgs,
    NewEvent,
    PullResult,
    PushResult,
    encoded_size,
    new_id,
    utc_now,
    validate,
)
from linkproc_ray.core.limits import DEFAULT_PULL_LIMIT, MAX_PULL_LIMIT, MAX_PULL_WAIT, MAX_PUSH_BYTES, MAX_PUSH_EVENTS
from linkproc_ray.core.search import search_links
from linkproc_ray.core.store import EventStore
from linkproc_ray.core.types import JSON
from linkproc_ray.errors import BatchTooLarge, InvalidEvent, InvalidTag, LinkprocError, NotFound, ServerAhead

log = logging.getLogger(__name__)

SERVER_CLIENT_ID: Final = "sync-backend"

Poke = Callable[[], Awaitable[None]]


@dataclass
class _Write:
    """One queued write: ``decide`` runs inside the group's transaction, in queue order."""

    decide: Callable[[EventStore], Awaitable[tuple[list[NewEvent], Any]]]
    future: asyncio.Future[tuple[list[int], Any]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


def check_batch(events: list[NewEvent]) -> None:
    """Limits of one push: count, bytes, and ids unique within the batch."""
    if len(events) > MAX_PUSH_EVENTS:
        raise BatchTooLarge(f"a push holds at most {MAX_PUSH_EVENTS} events, got {len(events)}")
    size = encoded_size(events)
    if size > MAX_PUSH_BYTES:
        raise BatchTooLarge(f"a push holds at most {MAX_PUSH_BYTES} bytes, got {size}")
    seen: set[str] = set()
    for index, event in enumerate(events):
        validate(event.name, event.args)
        if event.id in seen:
            raise InvalidEvent(f"events[{index}].id {event.id!r} repeats in the batch", event=event.name, field="id")
        seen.add(event.id)


class SyncBackend:
    """One org's ordered, durable log and read model.

    :param store: the org's ``backend.sqlite`` (with its log).
    :param poke: called, without data, after a commit that may give the
        processor work; never awaited by the pusher.
    """

    def __init__(self, store: EventStore, *, poke: Poke | None = None, session_id: str = "server") -> None:
        self.store = store
        self._poke = poke
        self._session_id = session_id
        self._queue: asyncio.Queue[_Write] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._new_events = asyncio.Event()
        self._poker: asyncio.Task[None] | None = None
        self._poke_again = False
        self.followers = 0
        self.last_activity = time.monotonic()
        self.commits = 0
        self._committed_head = 0

    async def start(self, *, watchdog_interval: float | None = None) -> None:
        """Open the store and the writer: from here on a push is accepted (a cold org's save waits for this only).

        Then, in the background, it pokes the processor if the log shows
        unfinished links; with ``watchdog_interval``, again every interval
        while they exist, so a link interrupted by a crash finishes even if no
        new link is ever saved.
        """
        await self.store.open()
        self._committed_head = self.store.head
        self._writer = asyncio.create_task(self._write_loop(), name="sync-backend-writer")
        self._watchdog = asyncio.create_task(self._watch(watchdog_interval), name="sync-backend-watchdog")

    async def _poke_if_unfinished(self) -> None:
        if await queries.pending_links(self.store) or await queries.deleted_while_pending(self.store):
            self._schedule_poke()

    async def _watch(self, interval: float | None) -> None:
        while True:
            try:
                await self._poke_if_unfinished()
            except LinkprocError:
                log.warning("watchdog could not read the read model", exc_info=True)
            if interval is None:
                return
            await asyncio.sleep(interval)

    def idle_seconds(self) -> float:
        """How long no request came and nobody followed the log (0 while followed)."""
        if self.followers:
            return 0.0
        return time.monotonic() - self.last_activity

    async def close(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            await asyncio.gather(self._watchdog, return_exceptions=True)
            self._watchdog = None
        if self._writer is not None:
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)
            self._writer = None
        await self.store.close()

    @property
    def head(self) -> int:
        """The last committed seq: pulls never see further than this."""
        return self._committed_head

    # -- writes -----------------------------------------------------------

    async def push(self, parent: int, events: list[NewEvent]) -> PushResult:
        """Append a client's batch if ``parent`` is the head; durable before it returns.

        A batch whose ids are already stored (a retry after a lost ack) is
        answered with its original seqs and stored nothing.
        """
        check_batch(events)
        if not events:
            return PushResult(head=self.head, seqs=[])

        async def decide(store: EventStore) -> tuple[list[NewEvent], Any]:
            known = await store.seqs_of([e.id for e in events])
            if known:
                if len(known) != len(events):
                    raise InvalidEvent("part of this batch is already stored under the same ids", field="id")
                return [], [known[e.id] for e in events]
            if parent != store.head:
                raise ServerAhead(store.head)
            return events, None

        seqs, retried = await self._submit(decide)
        return PushResult(head=self.head, seqs=retried if retried is not None else seqs)

    async def append(self, events_args: list[EventArgs]) -> PushResult:
        """Commit server-made events at the head (REST commands): no parent check."""
        events = [self._new_event(args) for args in events_args]

        async def decide(store: EventStore) -> tuple[list[NewEvent], Any]:
            return events, None

        seqs, _ = await self._submit(decide)
        return PushResult(head=self.head, seqs=seqs)

    async def create_link(self, url: str, domain: str, source: str | None, link_id: str) -> tuple[JSON, bool]:
        """Save a link unless the same URL is already live; returns ``(link, created)``."""

        async def decide(store: EventStore) -> tuple[list[NewEvent], Any]:
            existing = await queries.find_live_link_by_url(store, url, in_transaction=True)
            if existing is not None:
                return [], existing
            created = ev.LinkCreated(id=link_id, url=url, domain=domain, createdAt=utc_now(), source=source)
            return [self._new_event(created)], None

        _, existing = await self._submit(decide)
        if existing is not None:
            return existing, False
        link = await queries.get_link(self.store, link_id)
        assert link is not None, "a committed LinkCreated must materialize"
        return link, True

    async def import_links(self, bookmarks: list[NewBookmark]) -> list[JSON]:
        """Save many links in one commit, each once: ``{"outcome": "created"|"exists"|"duplicate", "id"}`` per entry.

        ``exists`` is a live link saved before; ``duplicate`` repeats a URL given
        earlier in the same list. Tag names that are new to the org become tags;
        an existing link gains the import's tags it lacks, so importing twice adds nothing.
        """

        async def decide(store: EventStore) -> tuple[list[NewEvent], Any]:
            now = utc_now()
            tag_ids = await queries.tag_ids(store, in_transaction=True)
            made: list[EventArgs] = []
            outcomes: list[JSON] = []
            seen: dict[str, str] = {}
            for bookmark in bookmarks:
                if bookmark.url in seen:
                    outcomes.append({"outcome": "duplicate", "id": seen[bookmark.url]})
                    continue
                existing = await queries.live_link_id(store, bookmark.url)
                if existing is None:
                    link_id, have = new_id(), set[str]()
                    made.append(
                        ev.LinkCreated(
                            id=link_id, url=bookmark.url, domain=bookmark.domain, createdAt=now, source=bookmark.source
                        )
                    )
                    outcomes.append({"outcome": "created", "id": link_id})
                else:
                    link_id = existing
                    have = set(await queries.tag_names(store, link_id, in_transaction=True)) if bookmark.tags else set()
                    outcomes.append({"outcome": "exists", "id": link_id})
                seen[bookmark.url] = link_id
                for name in bookmark.tags:
                    if name in have:
                        continue
                    if name not in tag_ids:
                        tag_ids[name] = new_id()
                        made.append(ev.TagCreated(id=tag_ids[name], name=name, createdAt=now))
                    made.append(ev.LinkTagged(linkId=link_id, tagId=tag_ids[name], taggedAt=now))
                    have.add(name)
            return [self._new_event(args) for args in made], outcomes

        _, outcomes = await self._submit(decide)
        result: list[JSON] = outcomes
        return result

    async def tag_link(self, link_id: str, name: str) -> JSON:
        """Tag a live link by tag name (accepting a suggestion is this): the org's tag, created if it has none."""
        clean = _tag(name)

        async def change(store: EventStore, link: JSON) -> list[EventArgs]:
            if clean in link["tags"]:
                return []
            now = utc_now()
            tag_id = (await queries.tag_ids(store, in_transaction=True)).get(clean)
            made: list[EventArgs] = []
            if tag_id is None:
                tag_id = new_id()
                made.append(ev.TagCreated(id=tag_id, name=clean, createdAt=now))
            return [*made, ev.LinkTagged(linkId=link_id, tagId=tag_id, taggedAt=now)]

        return await self._change_link(link_id, change)

    async def untag_link(self, link_id: str, name: str) -> JSON:
        """Take a tag off a live link; a link without it stays as it is."""
        clean = _tag(name)

        async def change(store: EventStore, link: JSON) -> list[EventArgs]:
            rows = await store.fetchall(
                "SELECT t.id FROM link_tags AS lt JOIN tags AS t ON t.id = lt.tag_id "
                "WHERE lt.link_id = ? AND t.name = ? AND t.deleted_at IS NULL",
                (link_id, clean),
                in_transaction=True,
            )
            return [ev.LinkUntagged(linkId=link_id, tagId=row["id"]) for row in rows]

        return await self._change_link(link_id, change)

    async def dismiss_suggestion(self, link_id: str, name: str) -> JSON:
        """Dismiss a suggested tag of a live link; one not suggested stays as it is."""
        clean = _tag(name)

        async def change(store: EventStore, link: JSON) -> list[EventArgs]:
            if clean not in link["suggestedTags"]:
                return []
            return [ev.TagSuggestionDismissed(linkId=link_id, name=clean, dismissedAt=utc_now())]

        return await self._change_link(link_id, change)

    async def _change_link(
        self, link_id: str, change: Callable[[EventStore, JSON], Awaitable[list[EventArgs]]]
    ) -> JSON:
        """Commit what ``change`` decides from the live link, in the writer's transaction; the link after it.

        A missing or deleted link is :class:`NotFound`, found before queueing:
        an error raised inside the group's transaction would fail the whole group.
        """
        if await self._live_link(link_id) is None:
            raise NotFound(f"no link {link_id!r}")

        async def decide(store: EventStore) -> tuple[list[NewEvent], Any]:
            link = await queries.get_link(store, link_id, in_transaction=True)
            if link is None or link["deletedAt"] is not None:
                return [], None  # deleted meanwhile: nothing to change
            return [self._new_event(args) for args in await change(store, link)], None

        await self._submit(decide)
        link = await self._live_link(link_id)
        if link is None:
            raise NotFound(f"no link {link_id!r}")
        return link

    async def _live_link(self, link_id: str) -> JSON | None:
        link = await queries.get_link(self.store, link_id)
        return None if link is None or link["deletedAt"] is not None else link

    def _new_event(self, args: EventArgs) -> NewEvent:
        return NewEvent.of(args, client_id=SERVER_CLIENT_ID, session_id=self._session_id)

    async def _submit(
        self, decide: Callable[[EventStore], Awaitable[tuple[list[NewEvent], Any]]]
    ) -> tuple[list[int], Any]:
        self.last_activity = time.monotonic()
        write = _Write(decide)
        await self._queue.put(write)
        return await write.future

    async def _write_loop(self) -> None:
        while True:
            group = [await self._queue.get()]
            while not self._queue.empty():
                group.append(self._queue.get_nowait())
            try:
                await self._commit_group(group)
            except Exception as exc:  # loop boundary: fail this group, keep serving
                log.exception("group commit failed")
                for write in group:
                    if not write.future.done():
                        write.future.set_exception(exc)

    async def _commit_group(self, group: list[_Write]) -> None:
        outcomes: list[tuple[_Write, list[int] | BaseException, Any]] = []
        committed: list[Event] = []
        async with self.store.transaction() as db:
            for write in group:
                try:
                    new_events, result = await write.decide(self.store)
                except (ServerAhead, InvalidEvent) as exc:
                    outcomes.append((write, exc, None))
                    continue
                parent = self.store.head
                batch = [e.at(parent + i + 1, parent) for i, e in enumerate(new_events)]
                if batch:
                    await self.store.apply(db, batch)
                    committed.extend(batch)
                outcomes.append((write, [e.seq for e in batch], result))
        # Only now, after COMMIT (and its fsync), does anyone hear back.
        self._committed_head = self.store.head
        self.commits += 1
        for write, seqs_or_error, result in outcomes:
            if write.future.done():
                continue  # its caller gave up (a socket closed); what it wrote is stored all the same
            if isinstance(seqs_or_error, BaseException):
                write.future.set_exception(seqs_or_error)
            else:
                write.future.set_result((seqs_or_error, result))
        if committed:
            self._new_events.set()
            self._new_events = asyncio.Event()
            if any(e.name in POKE_EVENTS for e in committed):
                self._schedule_poke()

    def _schedule_poke(self) -> None:
        """Poke the processor, never awaited by the pusher; pokes asked for while one is out coalesce into one more."""
        if self._poke is None:
            return
        if self._poker is not None and not self._poker.done():
            self._poke_again = True
            return
        self._poker = asyncio.create_task(self._send_pokes())

    async def _send_pokes(self) -> None:
        assert self._poke is not None
        while True:
            self._poke_again = False
            try:
                await self._poke()
            except Exception:  # a lost poke is fine: the processor sweeps state
                log.warning("poke failed", exc_info=True)
            if not self._poke_again:
                return

    # -- reads ------------------------------------------------------------

    async def pull(self, after: int = 0, limit: int = DEFAULT_PULL_LIMIT, wait: float = 0.0) -> PullResult:
        """Events with ``seq > after``, oldest first; with ``wait``, a long poll."""
        if after < 0:
            raise InvalidEvent("after must be >= 0", field="after")
        limit = max(1, min(limit, MAX_PULL_LIMIT))
        wait = max(0.0, min(wait, MAX_PULL_WAIT))
        self.last_activity = time.monotonic()
        if wait > 0 and self.head <= after:
            self.followers += 1
            try:
                deadline = time.monotonic() + wait
                while self.head <= after:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    signal = self._new_events
                    try:
                        await asyncio.wait_for(signal.wait(), remaining)
                    except TimeoutError:
                        break
            finally:
                self.followers -= 1
                self.last_activity = time.monotonic()
        head = self.head
        events = await self.store.read_events(after, limit) if head > after else []
        return PullResult(events=events, head=head)

    async def get_link(self, link_id: str) -> JSON | None:
        return await queries.get_link(self.store, link_id)

    async def list_links(self, **kwargs: Any) -> tuple[list[JSON], int | None]:
        return await queries.list_links(self.store, **kwargs)

    async def search_links(self, query: str, limit: int, offset: int) -> list[JSON]:
        return await search_links(self.store, query, limit=limit, offset=offset)

    async def export_links(self) -> list[JSON]:
        return await queries.all_links(self.store)

    async def link_history(self, link_id: str) -> list[JSON]:
        return await queries.link_history(self.store, link_id)


def _tag(name: str) -> str:
    """A tag name as given in a path: cleaned as imports clean folder names; empty is refused."""
    clean = tag_name(name) if ev.is_unicode(name) else None
    if clean is None:
        raise InvalidTag("a tag name needs at least one character that is not a space")
    return clean
