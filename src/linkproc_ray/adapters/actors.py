"""Ray adapters: the per-org named actors and the gateway the ingress uses.

Each actor builds its core object (restoring from its SQLite file) and
delegates; every Ray option lives in :func:`actor_options`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from typing import Any, TypeVar, cast

import ray
from ray.exceptions import RayActorError, RayTaskError

from linkproc_ray.adapters.class_ids import stable_class_id
from linkproc_ray.adapters.metrics import org_metrics
from linkproc_ray.adapters.worker_logs import own_log_files, remove_own_log_files
from linkproc_ray.config import NAMESPACE, Settings
from linkproc_ray.core.backoff import Backoff
from linkproc_ray.core.bookmarks import NewBookmark
from linkproc_ray.core.events import EventArgs, NewEvent, PullResult, PushResult
from linkproc_ray.core.limits import DEFAULT_PULL_LIMIT
from linkproc_ray.core.store import EventStore
from linkproc_ray.core.types import JSON
from linkproc_ray.errors import ActorEvicted, LinkprocError, Unavailable
from linkproc_ray.sync.backend import SyncBackend
from linkproc_ray.sync.hibernation import Hibernation

log = logging.getLogger(__name__)


def backend_name(org: str) -> str:
    return f"sync-backend:{org}"


def processor_name(org: str) -> str:
    return f"link-processor:{org}"


def actor_options(name: str, settings: Settings) -> dict[str, Any]:
    """The one place that says how org actors live: named, detached, restarted forever."""
    return {
        "name": name,
        "namespace": NAMESPACE,
        "lifetime": "detached",
        "get_if_exists": True,
        "max_restarts": -1,
        "num_cpus": settings.actor_num_cpus,
        # What the scheduler packs a node by: it caps a node at its memory and
        # spreads orgs over the others once one is half full.
        "memory": settings.actor_memory_mb * 2**20,
        "max_concurrency": 1000,
        # Every method call would leave a task event in the GCS (about 3.6 KB each,
        # up to 100,000 kept): the soak saw the GCS grow 48 -> 165 MiB without
        # levelling off. Serve turns them off for its replicas the same way.
        "enable_task_events": False,
    }


class _Hibernating:
    """Idle eviction for an org actor: exit after ``idle_ttl`` and let the next call re-create it."""

    def __init__(self, org: str, kind: str, idle_ttl: float) -> None:
        self._org = org
        self._kind = kind
        self._hibernation = Hibernation(idle_ttl)
        self._evictor: asyncio.Task[None] | None = None
        org_metrics().record(org, "woke", {"actor": kind})

    async def loaded_modules(self) -> list[str]:
        """Top-level modules this actor's process has imported: heavy imports show here (and are tested for)."""
        return sorted({name.partition(".")[0] for name in list(sys.modules)})

    async def log_files(self) -> list[str]:
        """This actor's own files in Ray's log directory (removed when it hibernates)."""
        return [str(path) for path in own_log_files()]

    def _start_evictor(self, idle_seconds: Callable[[], float], close: Callable[[], Awaitable[None]]) -> None:
        if self._evictor is None:
            org_metrics().start()
            self._hibernation.idle_seconds = idle_seconds
            self._evictor = asyncio.ensure_future(self._evict_when_idle(close))

    async def _evict_when_idle(self, close: Callable[[], Awaitable[None]]) -> None:
        await self._hibernation.wait_until_idle()
        log.info("idle for %.0f s: hibernating", self._hibernation.idle_ttl)
        org_metrics().record(self._org, "evicted", {"actor": self._kind})
        await close()
        await org_metrics().flush()
        remove_own_log_files()
        # An intentional exit: Ray does not restart it, and the name is free
        # for the next get_if_exists to create a fresh actor from the files.
        ray.get_runtime_context().current_actor.__ray_terminate__.remote()


Method = TypeVar("Method", bound=Callable[..., Awaitable[Any]])


def _serving(method: Method) -> Method:
    """An actor method the hibernation gate admits and counts: refused once the actor is closing."""

    @functools.wraps(method)
    async def call(self: _Hibernating, *args: Any, **kwargs: Any) -> Any:
        with self._hibernation.serving():
            return await method(self, *args, **kwargs)

    return cast(Method, call)


class _SingleFlight:
    """Runs an async start-up once per actor life, however many calls race to it."""

    def __init__(self, start: Callable[[], Awaitable[None]]) -> None:
        self._start = start
        self._task: asyncio.Task[None] | None = None

    async def __call__(self) -> None:
        if self._task is None or (self._task.done() and self._task.exception() is not None):
            self._task = asyncio.ensure_future(self._start())
        await asyncio.shield(self._task)


@stable_class_id
@ray.remote
class SyncBackendActor(_Hibernating):
    """``sync-backend:<org>``: the org's log, restored from ``backend.sqlite``."""

    def __init__(self, org: str, settings: dict[str, Any]) -> None:
        self.org = org
        self.settings = Settings(**settings)
        super().__init__(org, "sync-backend", self.settings.idle_ttl)
        store = EventStore(self.settings.org_dir(org) / "backend.sqlite", exclusive=True)
        self.core = SyncBackend(store, poke=self._poke, session_id=f"{org}:{int(time.time())}")
        self._ready = _SingleFlight(self._start)
        self._processor = NamedActor(lambda: processor_handle(org, self.settings))

    async def _start(self) -> None:
        await self.core.start(watchdog_interval=self.settings.sweep_interval)
        self._start_evictor(self.core.idle_seconds, self.core.close)

    async def _poke(self) -> None:
        await self._processor.call("poke")

    @_serving
    async def push(self, parent: int, events: list[NewEvent]) -> PushResult:
        await self._ready()
        return await self.core.push(parent, events)

    @_serving
    async def pull(self, after: int = 0, limit: int = DEFAULT_PULL_LIMIT, wait: float = 0.0) -> PullResult:
        await self._ready()
        return await self.core.pull(after, limit, wait)

    @_serving
    async def append(self, events: list[EventArgs]) -> PushResult:
        await self._ready()
        return await self.core.append(events)

    @_serving
    async def create_link(self, url: str, domain: str, source: str | None, link_id: str) -> tuple[JSON, bool]:
        await self._ready()
        return await self.core.create_link(url, domain, source, link_id)

    @_serving
    async def import_links(self, bookmarks: list[NewBookmark]) -> list[JSON]:
        await self._ready()
        return await self.core.import_links(bookmarks)

    @_serving
    async def get_link(self, link_id: str) -> JSON | None:
        await self._ready()
        return await self.core.get_link(link_id)

    @_serving
    async def list_links(self, **kwargs: Any) -> tuple[list[JSON], int | None]:
        await self._ready()
        return await self.core.list_links(**kwargs)

    @_serving
    async def tag_link(self, link_id: str, name: str) -> JSON:
        await self._ready()
        return await self.core.tag_link(link_id, name)

    @_serving
    async def untag_link(self, link_id: str, name: str) -> JSON:
        await self._ready()
        return await self.core.untag_link(link_id, name)

    @_serving
    async def dismiss_suggestion(self, link_id: str, name: str) -> JSON:
        await self._ready()
        return await self.core.dismiss_suggestion(link_id, name)

    @_serving
    async def search_links(self, query: str, limit: int, offset: int) -> list[JSON]:
        await self._ready()
        return await self.core.search_links(query, limit, offset)

    @_serving
    async def export_links(self) -> list[JSON]:
        await self._ready()
        return await self.core.export_links()

    @_serving
    async def link_history(self, link_id: str) -> list[JSON]:
        await self._ready()
        return await self.core.link_history(link_id)

    @_serving
    async def stats(self) -> JSON:
        await self._ready()
        return {
            "head": self.core.head,
            "followers": self.core.followers,
            "commits": self.core.commits,
            "pid": os.getpid(),
        }


@stable_class_id
@ray.remote
class LinkProcessorActor(_Hibernating):
    """``link-processor:<org>``: the org's processor, restored from ``processor.sqlite``."""

    def __init__(self, org: str, settings: dict[str, Any]) -> None:
        self.org = org
        self.settings = Settings(**settings)
        super().__init__(org, "link-processor", self.settings.idle_ttl)
        # Imported here, not at the top: the pipeline (lxml, trafilatura, the
        # Serve client) costs about 60 MB, and backend actors never need it.
        from linkproc_ray.adapters.batch import lower_priority
        from linkproc_ray.adapters.processor import build_processor

        # Processing is batch work: saves, pulls and live delivery come first.
        lower_priority(self.settings.parse_priority)

        self.core = build_processor(org, self.settings, ActorBackend(org, self.settings))

    async def _booted(self) -> None:
        await self.core.ensure_booted()
        self._start_evictor(self.core.idle_seconds, self.core.stop)

    @_serving
    async def poke(self) -> None:
        await self._booted()
        await self.core.poke()

    @_serving
    async def catch_up(self) -> int:
        await self._booted()
        return await self.core.catch_up()

    @_serving
    async def stats(self) -> JSON:
        await self._booted()
        return {
            "head": self.core.head,
            "in_flight": self.core.in_flight,
            "session_id": self.core.session_id,
            "session_restarts": self.core.session_restarts,
            "store_opens": EventStore.opened,
            "pulled_events": self.core.pulled_events,
            "pid": os.getpid(),
        }


def backend_handle(org: str, settings: Settings) -> Any:
    """The org's backend actor, created from its files if it is not running."""
    return SyncBackendActor.options(**actor_options(backend_name(org), settings)).remote(  # type: ignore[attr-defined]
        org, settings.to_actor_args()
    )


def processor_handle(org: str, settings: Settings) -> Any:
    """The org's processor actor, created from its files if it is not running."""
    return LinkProcessorActor.options(**actor_options(processor_name(org), settings)).remote(  # type: ignore[attr-defined]
        org, settings.to_actor_args()
    )


class NamedActor:
    """A cached handle to a named org actor, re-fetched (and so re-created) when it died.

    Callers retry on a handle to an actor that just exited (idle eviction) or
    is restarting; the handle is looked up again, which creates the actor
    from its files if it is gone.
    """

    def __init__(
        self,
        lookup: Callable[[], Any],
        *,
        patience: float = 15.0,
        backoff: Backoff = Backoff(0.2, 2.0),
        on_new_incarnation: Callable[[], None] | None = None,
    ) -> None:
        self._lookup = lookup
        self._handle: Any = None
        self._actor_id: Any = None
        self._patience = patience
        self._backoff = backoff
        self._on_new_incarnation = on_new_incarnation

    def _look_up(self) -> Any:
        handle = self._lookup()
        # Each actor incarnation this process ever held a handle to stays in its
        # core worker, subscribed in the GCS, until the process exits (Ray keeps
        # handles to dead detached actors); the owner of this NamedActor counts them.
        if handle._actor_id != self._actor_id:
            self._actor_id = handle._actor_id
            if self._on_new_incarnation is not None:
                self._on_new_incarnation()
        return handle

    async def call(
        self,
        method: str,
        *args: Any,
        waking: Callable[[], AbstractContextManager[None]] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Call ``method``, retrying for up to ``patience`` seconds while the actor restarts or wakes.

        Past that, :class:`Unavailable` (503): the caller may retry later; nothing was lost.

        :param waking: entered (once) when this call has to look the actor up,
            so that it may be waking, and held until the call ends (see :class:`Prewakes`).
        """
        with ExitStack() as held:
            return await self._call(method, args, kwargs, waking, held)

    async def _call(
        self,
        method: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        waking: Callable[[], AbstractContextManager[None]] | None,
        held: ExitStack,
    ) -> Any:
        deadline = time.monotonic() + self._patience
        attempt = 0
        while True:
            if self._handle is None:
                self._handle = self._look_up()
                if waking is not None:
                    held.enter_context(waking())
                    waking = None
            ref = getattr(self._handle, method).remote(*args, **kwargs)
            try:
                return await ref
            except asyncio.CancelledError:
                # Cancel the remote call too: a long poll left running would
                # keep its backend "followed" (and awake) for up to its wait.
                ray.cancel(ref)
                raise
            except (RayActorError, ActorEvicted) as exc:
                self._handle = None
                if time.monotonic() >= deadline:
                    raise Unavailable(
                        f"{method}: the org's actor did not come back within {self._patience:g} s"
                    ) from exc
                log.info("actor unavailable for %s; retrying (%d)", method, attempt + 1)
                await asyncio.sleep(self._backoff.delay(attempt))
                attempt += 1
            except RayTaskError as exc:
                # Our own errors travel as themselves: their message, not the
                # remote traceback Ray wraps them in, reaches HTTP clients.
                if isinstance(exc.cause, LinkprocError):
                    raise exc.cause from None
                raise


class Prewakes:
    """Wakes an org's processor alongside its backend on a save, when few orgs are waking.

    Left to itself, a cold org's processor is created when its backend, once
    started, pokes it: two worker starts one after the other, about 0.5 s each
    on an idle node here. Started together, a lone wake reaches its first
    Started in about the time of one (benchmarks/churn.py, one org at a time:
    about 1.07 -> 0.71 s, benchmarks/results/prewakes/). But a processor started early takes a place in the
    node's start queue ahead of other orgs' backends, so only a save that
    finds fewer than ``below`` (``LINKPROC_PREWAKES``) other orgs waking
    through this process does it: when many orgs wake at once, saves come
    before background work.
    """

    def __init__(self, wake: Callable[[str], None], below: int) -> None:
        self._wake = wake
        self.below = below
        self.waking = 0
        """Saves in flight that looked their org's backend up, and so may be waking it."""

    @contextmanager
    def alongside(self, org: str) -> Iterator[None]:
        """Held while a save looks up (and so may wake) ``org``'s backend."""
        if self.waking < self.below:
            try:
                self._wake(org)
            except Exception:  # an early start only: the backend's poke wakes the processor anyway
                log.warning("could not wake the processor of %s early", org, exc_info=True)
        self.waking += 1
        try:
            yield
        finally:
            self.waking -= 1


class ActorBackend:
    """An org's backend actor behind the core's :class:`OrgBackend` protocol.

    With ``prewakes`` (the ingress), the calls that make work for the
    processor wake it alongside a waking backend.
    """

    def __init__(
        self,
        org: str,
        settings: Settings,
        on_new_incarnation: Callable[[], None] | None = None,
        prewakes: Prewakes | None = None,
    ) -> None:
        self._actor = NamedActor(lambda: backend_handle(org, settings), on_new_incarnation=on_new_incarnation)
        self._waking = None if prewakes is None else functools.partial(prewakes.alongside, org)

    async def push(self, parent: int, events: list[NewEvent]) -> PushResult:
        result: PushResult = await self._actor.call("push", parent, events, waking=self._waking)
        return result

    async def pull(self, after: int = 0, limit: int = DEFAULT_PULL_LIMIT, wait: float = 0.0) -> PullResult:
        result: PullResult = await self._actor.call("pull", after, limit, wait)
        return result

    async def append(self, events: list[EventArgs]) -> PushResult:
        result: PushResult = await self._actor.call("append", events, waking=self._waking)
        return result

    async def create_link(self, url: str, domain: str, source: str | None, link_id: str) -> tuple[JSON, bool]:
        result: tuple[JSON, bool] = await self._actor.call(
            "create_link", url, domain, source, link_id, waking=self._waking
        )
        return result

    async def import_links(self, bookmarks: list[NewBookmark]) -> list[JSON]:
        result: list[JSON] = await self._actor.call("import_links", bookmarks, waking=self._waking)
        return result

    async def get_link(self, link_id: str) -> JSON | None:
        result: JSON | None = await self._actor.call("get_link", link_id)
        return result

    async def list_links(self, **kwargs: Any) -> tuple[list[JSON], int | None]:
        result: tuple[list[JSON], int | None] = await self._actor.call("list_links", **kwargs)
        return result

    async def tag_link(self, link_id: str, name: str) -> JSON:
        result: JSON = await self._actor.call("tag_link", link_id, name)
        return result

    async def untag_link(self, link_id: str, name: str) -> JSON:
        result: JSON = await self._actor.call("untag_link", link_id, name)
        return result

    async def dismiss_suggestion(self, link_id: str, name: str) -> JSON:
        result: JSON = await self._actor.call("dismiss_suggestion", link_id, name)
        return result

    async def search_links(self, query: str, limit: int, offset: int) -> list[JSON]:
        result: list[JSON] = await self._actor.call("search_links", query, limit, offset)
        return result

    async def export_links(self) -> list[JSON]:
        result: list[JSON] = await self._actor.call("export_links")
        return result

    async def link_history(self, link_id: str) -> list[JSON]:
        result: list[JSON] = await self._actor.call("link_history", link_id)
        return result


class RayGateway:
    """The ingress's view of the cluster: one :class:`ActorBackend` per org."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._backends: dict[str, ActorBackend] = {}
        self.prewakes = Prewakes(self._wake_processor, settings.prewakes)
        self.incarnations_held = 0
        """Org actor incarnations this process has held a handle to (see :meth:`worn_out`)."""

    async def backend(self, org: str) -> ActorBackend:
        if org not in self._backends:
            self._backends[org] = ActorBackend(org, self.settings, self._count_incarnation, self.prewakes)
        return self._backends[org]

    def _count_incarnation(self) -> None:
        self.incarnations_held += 1

    def _wake_processor(self, org: str) -> None:
        processor_handle(org, self.settings)
        self._count_incarnation()  # as a backend's: the handle may be a new incarnation's

    def worn_out(self) -> bool:
        """Whether this process should be replaced: it holds more dead orgs' handles than it may.

        Every wake of an org gives it a new backend actor, and Ray keeps this
        process's handle to each one (and the GCS its subscription for it)
        until the process exits: benchmarks/churn.py saw this process grow
        9-41 KB per wake. A fresh process holds none of them.
        """
        return self.incarnations_held >= self.settings.ingress_recycle_after
