"""The link processor: a replica of one org's log that finds its work in state.

"I wake up when poked, but I don't trust the poker. I look at the world
(state) and decide what to do." A poke carries no data; after every applied
batch, every poke and every sweep the processor recomputes the pending links
from its own tables, and the backend's parent check makes each decision safe
against anything that happened meanwhile.

Decisions go out through one outbox: whatever links decided while a push was
on its way leave together in the next push, each re-checked against the
state it was decided in. A link costs two pushes (Started when a fetch lane
admits it; metadata, summary and the terminal event together), three when
its summary is slow (the metadata goes first so the title shows), and in a
burst far fewer, since decisions of many links share a push.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from linkproc_ray.core import events as ev
from linkproc_ray.core import queries
from linkproc_ray.core.backoff import Backoff
from linkproc_ray.core.events import Event, EventArgs, NewEvent, encoded_size, new_id, utc_now
from linkproc_ray.core.limits import ENVELOPE_BYTES, MAX_PUSH_BYTES, MAX_PUSH_EVENTS
from linkproc_ray.core.store import EventStore
from linkproc_ray.core.types import JSON
from linkproc_ray.errors import LinkprocError, ServerAhead, StaleDecision
from linkproc_ray.pipeline.enricher import Enricher
from linkproc_ray.summarize.protocol import SummaryRequest
from linkproc_ray.sync.ports import BackendPort

log = logging.getLogger(__name__)

INTERNAL_ERROR = "internal"
INTERRUPTED = "interrupted"
MAX_LINKS_PER_LOOK = 500
"""More links to re-decide than this, and the processor looks at them all (one scan, not a long ``IN`` list)."""


@dataclass(frozen=True, slots=True)
class Expect:
    """The state a decision was made in; it is re-checked before every push attempt."""

    deleted: bool = False
    statuses: frozenset[str | None] = frozenset({"pending", "reprocess_requested"})
    attempts: int | None = None

    def holds(self, state: queries.LinkState | None) -> bool:
        if state is None:
            return False
        return (
            state.deleted == self.deleted
            and state.status in self.statuses
            and (self.attempts is None or state.attempts == self.attempts)
        )


RUNNING = Expect()
"""A run in progress: the link is live and its request not yet ended (a reprocess request may wait)."""


@dataclass(eq=False)
class _Decision:
    """Events about one link, to be pushed only while the state they were decided in still holds."""

    link_id: str
    events: list[NewEvent]
    expect: Expect
    done: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


@dataclass(frozen=True, slots=True)
class ProcessorSettings:
    """Tunables of one processor."""

    max_attempts: int = 3
    pull_wait: float = 20.0
    pull_page: int = 1000
    sweep_interval: float = 30.0
    retry_backoff: float = 0.5
    max_push_failures: int = 5
    """Failed pushes in a row (not ``server_ahead``) before the session restarts."""
    metadata_alone_after: float = 1.0
    """Seconds a summary may take before the page's metadata is pushed on its own (title first, then summary)."""

    @property
    def pull_backoff(self) -> Backoff:
        return Backoff(initial=self.retry_backoff, maximum=30.0)

    @property
    def push_backoff(self) -> Backoff:
        return Backoff(initial=self.retry_backoff, maximum=10.0)


class LinkProcessor:
    """Follows the org's log, processes each pending link once, and pushes the outcome.

    :param store: the processor's own replica (``processor.sqlite``), no log kept.
    :param backend: the org's sync backend.
    :param enricher: the fetch / parse / summarize steps with their lanes.
    :param client_id: written into every event the processor makes.
    """

    def __init__(
        self,
        store: EventStore,
        backend: BackendPort,
        enricher: Enricher,
        *,
        client_id: str,
        settings: ProcessorSettings = ProcessorSettings(),
        on_event: Callable[[str, JSON], None] | None = None,
    ) -> None:
        self.store = store
        self.backend = backend
        self.enricher = enricher
        self.client_id = client_id
        self.settings = settings
        self.session_id = ""
        self._on_event = on_event or (lambda kind, data: None)
        self._boot: asyncio.Task[None] | None = None
        self._session: asyncio.Task[None] | None = None
        self._apply_lock = asyncio.Lock()
        self._dirty = asyncio.Event()
        self._dirty_links: set[str] = set()
        self._look_at_all = False
        self._applied = asyncio.Event()
        self._outbox: list[_Decision] = []
        self._outbox_ready = asyncio.Event()
        self._in_flight: dict[str, asyncio.Task[None]] = {}
        self._has_pending = False
        self.session_restarts = 0
        self.pulled_events = 0
        self.pushes = 0
        self.last_activity = time.monotonic()

    # -- lifecycle ---------------------------------------------------------

    async def ensure_booted(self) -> None:
        """Open the store and start the live session, once per life (single-flight)."""
        if self._boot is None or (self._boot.done() and self._boot.exception() is not None):
            self._boot = asyncio.create_task(self._do_boot())
        await asyncio.shield(self._boot)

    async def _do_boot(self) -> None:
        # The replica holds nothing the backend's log does not: a damaged file is rebuilt from it.
        await self.store.open_or_rebuild()
        session = await self.store.get_meta("session_id")
        if session is None:
            session = new_id()
            await self.store.set_meta("session_id", session)
        self.session_id = session
        self._session = asyncio.create_task(self._supervise(), name="processor-session")

    async def poke(self) -> None:
        """Wake up and look at the world; the poke itself says nothing."""
        await self.ensure_booted()
        self.last_activity = time.monotonic()
        self._wake_for_all()

    async def stop(self) -> None:
        """Cancel the session and every link in flight; their status stays pending."""
        if self._session is not None:
            self._session.cancel()
            await asyncio.gather(self._session, return_exceptions=True)
        await self._cancel_in_flight()
        await self.store.close()

    @property
    def head(self) -> int:
        """The processor's cursor: the last seq applied to its replica."""
        return self.store.head

    @property
    def in_flight(self) -> list[str]:
        return sorted(self._in_flight)

    def idle_seconds(self) -> float:
        """How long nothing was in flight, pending, applied or poked (0 while there is work)."""
        if self._in_flight or self._has_pending:
            return 0.0
        return time.monotonic() - self.last_activity

    async def _cancel_in_flight(self) -> None:
        tasks = list(self._in_flight.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _supervise(self) -> None:
        # A session is the live pull, the reconciler, the sweep and the outbox's
        # pusher; if any dies, all restart together, loudly, so the processor
        # never runs half-alive (never pulling without pushing, or the reverse).
        while True:
            self._outbox.clear()
            session = [
                asyncio.create_task(self._follow(), name="processor-follow"),
                asyncio.create_task(self._reconcile_loop(), name="processor-reconcile"),
                asyncio.create_task(self._sweep_loop(), name="processor-sweep"),
                asyncio.create_task(self._push_loop(), name="processor-push"),
            ]
            try:
                done, _ = await asyncio.wait(session, return_when=asyncio.FIRST_EXCEPTION)
                for task in done:
                    task.result()
            except asyncio.CancelledError:
                for task in session:
                    task.cancel()
                await asyncio.gather(*session, return_exceptions=True)
                raise
            except Exception:  # session boundary: restart, never limp on
                self.session_restarts += 1
                log.exception("processor session failed; restarting it (restart %d)", self.session_restarts)
                self._on_event("session_restart", {"restarts": self.session_restarts})
                for task in session:
                    task.cancel()
                await asyncio.gather(*session, return_exceptions=True)
                # Links in flight belong to the failed session: stop them; their
                # persisted status (pending) makes the next session resume them.
                await self._cancel_in_flight()
                await asyncio.sleep(self.settings.retry_backoff)

    # -- following the log --------------------------------------------------

    async def _follow(self) -> None:
        failures = 0
        while True:
            try:
                result = await self.backend.pull(self.head, self.settings.pull_page, self.settings.pull_wait)
            except (ConnectionError, OSError, LinkprocError, TimeoutError) as exc:
                failures += 1
                delay = self.settings.pull_backoff.delay(failures)
                log.warning("pull failed (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                continue
            failures = 0
            if result.events:
                await self._apply(result.events)

    async def _apply(self, events: list[Event]) -> None:
        """Apply confirmed events in order (skipping ones already applied), then re-decide."""
        async with self._apply_lock:
            fresh = [e for e in events if e.seq > self.head]
            if not fresh:
                return
            async with self.store.transaction() as db:
                await self.store.apply(db, fresh)
            self.pulled_events += len(fresh)
            self.last_activity = time.monotonic()
            self._on_event("pulled", {"count": len(fresh)})
            self._applied.set()
            self._applied = asyncio.Event()
        deleted = {ev.LinkDeleted.of(e).id for e in fresh if e.name == ev.LinkDeleted.NAME}
        for link_id in deleted & self._in_flight.keys():
            self._in_flight[link_id].cancel()
        self._wake_for({link for e in fresh if (link := ev.link_of(e)) is not None})

    async def _reached(self, seq: int) -> None:
        """Until the live pull has applied the log up to ``seq`` (no pull of its own: the follow loop brings it)."""
        while self.head < seq:
            await self._applied.wait()

    async def catch_up(self) -> int:
        """Pull every missing event now, in pages; returns how many were applied."""
        applied = 0
        while True:
            result = await self.backend.pull(self.head, self.settings.pull_page, 0)
            before = self.head
            if result.events:
                await self._apply(result.events)
            applied += self.head - before
            if self.head >= result.head or not result.events:
                return applied

    # -- deciding -------------------------------------------------------------

    def _wake_for(self, link_ids: set[str]) -> None:
        """Re-decide these links: the events just applied or the run just ended were about them alone."""
        self._dirty_links |= link_ids
        self._dirty.set()

    def _wake_for_all(self) -> None:
        """Re-decide every link: poked, swept, a new session, or nothing left in flight."""
        self._look_at_all = True
        self._dirty.set()

    async def _reconcile_loop(self) -> None:
        self._wake_for_all()
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            among: set[str] | None = self._dirty_links
            if self._look_at_all or len(self._dirty_links) > MAX_LINKS_PER_LOOK:
                among = None
            self._look_at_all, self._dirty_links = False, set()
            await self._reconcile(among)

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.sweep_interval)
            self._wake_for_all()

    async def _reconcile(self, among: set[str] | None) -> None:
        """Spawn a task for each link of ``among`` (every link when ``None``) whose state asks for one.

        A link's state changes only by events about it, so looking at the links
        those events name decides as a look at all of them would, without
        reading every pending link again for each event of a burst.
        """
        for link_id in await queries.deleted_while_pending(self.store, among):
            if link_id not in self._in_flight:
                self._spawn(link_id, self._cancel_request(link_id))
        pending = await queries.pending_links(self.store, among)
        if among is None or pending:
            self._has_pending = bool(pending)
        for item in pending:
            if item.link_id not in self._in_flight:
                self._spawn(item.link_id, self._process(item))
        # Only a look at every link counts the pending ones; a narrow look still tells what is in flight.
        work = {"in_flight": len(self._in_flight)} | ({"pending": len(pending)} if among is None else {})
        self._on_event("work", work)

    def _spawn(self, link_id: str, work: Awaitable[None]) -> None:
        # The in-memory lock: one task per link. It is only a cache of
        # intent; the persisted status is the truth after any restart.
        self.last_activity = time.monotonic()
        task: asyncio.Task[None] = asyncio.ensure_future(work)
        self._in_flight[link_id] = task

        def finished(t: asyncio.Task[None]) -> None:
            if not t.cancelled() and t.exception() is not None:
                log.warning("link %s left pending: %s", link_id, t.exception())
            if self._in_flight.get(link_id) is t:
                del self._in_flight[link_id]
            self.last_activity = time.monotonic()
            if self._in_flight:
                self._wake_for({link_id})
            else:
                self._wake_for_all()

        task.add_done_callback(finished)

    async def _cancel_request(self, link_id: str) -> None:
        try:
            await self._commit(
                link_id,
                [ev.LinkProcessingCancelled(linkId=link_id, updatedAt=utc_now())],
                Expect(deleted=True, statuses=frozenset({"pending"})),
            )
        except StaleDecision:
            return
        self._on_event("outcome", {"outcome": "cancelled"})

    async def _process(self, item: queries.WorkItem) -> None:
        link_id = item.link_id
        try:
            if item.status == "pending" and item.attempts >= self.settings.max_attempts:
                # Found pending but not in flight, and out of attempts: a run that keeps being interrupted.
                decided = Expect(statuses=frozenset({"pending"}), attempts=item.attempts)
                await self._fail(link_id, INTERRUPTED, expect=decided)
                return
            await self._enrich(item)
        except StaleDecision:
            return
        except LinkprocError:
            raise
        except Exception:  # task boundary: a bug in a step fails this link only
            log.exception("processing %s crashed", link_id)
            await self._fail(link_id, INTERNAL_ERROR)

    async def _start(self, item: queries.WorkItem) -> None:
        """Mark the request as running, once a fetch lane admitted it: Started, or Resumed after an interruption."""
        link_id = item.link_id
        if item.status == "pending":
            # Found pending but not in flight: a run was interrupted.
            decided = Expect(statuses=frozenset({"pending"}), attempts=item.attempts)
            resumed = ev.LinkProcessingResumed(linkId=link_id, attempt=item.attempts + 1, updatedAt=utc_now())
            await self._commit(link_id, [resumed], decided)
        else:
            decided = Expect(statuses=frozenset({None, "reprocess_requested"}))
            await self._commit(link_id, [ev.LinkProcessingStarted(linkId=link_id, updatedAt=utc_now())], decided)
        self._on_event("started", {"linkId": link_id})

    async def _enrich(self, item: queries.WorkItem) -> None:
        link_id = item.link_id
        started = time.monotonic()

        async def admitted() -> None:
            await self._start(item)

        try:
            page, parsed = await self.enricher.fetch(item.url, on_admitted=admitted)
        except StaleDecision:
            raise
        except LinkprocError as exc:
            await self._fail(link_id, exc.code)
            return
        meta = parsed.metadata
        fetched = ev.LinkMetadataFetched(
            id=new_id(),
            linkId=link_id,
            title=meta.title,
            description=meta.description,
            image=meta.image,
            favicon=meta.favicon,
            siteName=meta.site_name,
            canonicalUrl=meta.canonical_url,
            fetchedAt=utc_now(),
        )
        self._on_event("stage", {"stage": "fetch", "seconds": time.monotonic() - started})
        summarize_started = time.monotonic()
        request = SummaryRequest(
            url=page.url,
            title=meta.title,
            description=meta.description,
            text=parsed.text or "",
            existing_tags=tuple(await queries.tag_names(self.store)),
            link_tags=tuple(await queries.tag_names(self.store, link_id)),
        )
        # The metadata leaves with the summary in one push, unless the summary is
        # slow (a model, a full lane): then it goes first, so the title shows meanwhile.
        # Found before a later step fails, it is kept (pushed with the failure).
        unpushed: list[EventArgs] = [fetched]
        summarizing = asyncio.ensure_future(self.enricher.summarize(request))
        try:
            await asyncio.wait({summarizing}, timeout=self.settings.metadata_alone_after)
            if not summarizing.done():
                await self._commit(link_id, unpushed)
                unpushed = []
            summary = await summarizing
        except LinkprocError as exc:
            await self._fail(link_id, exc.code, before=unpushed)
            return
        finally:
            summarizing.cancel()
        self._on_event("stage", {"stage": "summarize", "seconds": time.monotonic() - summarize_started})
        now = utc_now()
        tag_ids = await queries.tag_ids(self.store)
        outcome: list[EventArgs] = [
            *unpushed,
            ev.LinkSummarized(
                id=new_id(), linkId=link_id, summary=summary.summary, model=summary.model, summarizedAt=now
            ),
        ]
        outcome += [
            ev.TagSuggested(id=new_id(), linkId=link_id, tagId=tag_ids.get(name), name=name, suggestedAt=now)
            for name in summary.tags
        ]
        outcome.append(ev.LinkProcessingCompleted(linkId=link_id, updatedAt=now))
        await self._commit(link_id, outcome)
        self._on_event("outcome", {"outcome": "completed", "seconds": time.monotonic() - started})

    async def _fail(
        self, link_id: str, error: str, *, expect: Expect = RUNNING, before: Sequence[EventArgs] = ()
    ) -> None:
        failed = ev.LinkProcessingFailed(linkId=link_id, error=error, updatedAt=utc_now())
        await self._commit(link_id, [*before, failed], expect)
        self._on_event("outcome", {"outcome": "failed", "error": error})

    # -- writing --------------------------------------------------------------

    async def _commit(self, link_id: str, items: list[EventArgs], expect: Expect = RUNNING) -> None:
        """Hand events about one link to the outbox; returns once they are pushed and applied here.

        Before every push attempt the decision is re-checked against the newest
        state (``expect``): nothing but Cancelled is written about a deleted
        link, and no run writes after its request ended; then it raises
        :class:`StaleDecision`. The backend's parent check makes that check race-free.
        """
        events = [NewEvent.of(args, client_id=self.client_id, session_id=self.session_id) for args in items]
        decision = _Decision(link_id, events, expect)
        self._outbox.append(decision)
        self._outbox_ready.set()
        # Cancelling the link's task cancels the decision too; one already on its way is
        # pushed all the same (like a push in flight), and its status makes the next session resume.
        await decision.done

    async def _push_loop(self) -> None:
        """Push whatever the outbox holds, together; on ``server_ahead`` wait for the live pull, re-check, push again."""
        failures = 0
        while True:
            await self._outbox_ready.wait()
            self._outbox_ready.clear()
            while self._outbox:
                batch = await self._next_batch()
                if not batch:
                    continue
                parent = self.head
                try:
                    result = await self.backend.push(parent, [e for d in batch for e in d.events])
                except ServerAhead as exc:
                    self._outbox[:0] = batch
                    await self._reached(exc.head)
                    continue
                except Exception as exc:  # retry boundary: a push is idempotent by event ids
                    self._outbox[:0] = batch
                    failures += 1
                    if failures > self.settings.max_push_failures:
                        raise
                    delay = self.settings.push_backoff.delay(failures)
                    log.warning("push failed (%s); retrying in %.1f s", exc, delay)
                    await asyncio.sleep(delay)
                    continue
                failures = 0
                self.pushes += 1
                # A retried push may be answered with older seqs; either way the next
                # decision must see these events, so wait until the live pull brought them.
                await self._reached(max(result.seqs, default=parent))
                for decision in batch:
                    if not decision.done.done():
                        decision.done.set_result(None)
                self._on_event("pushed", {"count": sum(len(d.events) for d in batch)})

    async def _next_batch(self) -> list[_Decision]:
        """The outbox's decisions that fit one push and still hold; stale ones are answered :class:`StaleDecision`.

        One decision per link per push: a second waits for the next, decided
        against the state the first one made.
        """
        waiting, self._outbox = self._outbox, []
        states = await queries.link_states(self.store, {d.link_id for d in waiting})
        batch: list[_Decision] = []
        links: set[str] = set()
        events = size = 0
        budget = MAX_PUSH_BYTES - ENVELOPE_BYTES
        for decision in waiting:
            if decision.done.done():
                continue  # its link task was cancelled (the link deleted in flight)
            if not decision.expect.holds(states.get(decision.link_id)):
                decision.done.set_exception(StaleDecision(decision.link_id))
                continue
            cost = encoded_size(decision.events)
            if decision.link_id in links or events + len(decision.events) > MAX_PUSH_EVENTS or size + cost > budget:
                self._outbox.append(decision)
                continue
            batch.append(decision)
            links.add(decision.link_id)
            events += len(decision.events)
            size += cost
        return batch
