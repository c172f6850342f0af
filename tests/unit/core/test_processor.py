"""The processor's contract, on the core classes: real SQLite files, real HTTP on loopback.

Each test reads the truth from the backend's log: every link ends with exactly
one terminal event per processing request, whatever pokes, races or crashes.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from tests.factories import event, link_created, started
from tests.pages import article_ids
from tests.processor_harness import Org, one_clean_run

from linkproc_ray.core import events as ev
from linkproc_ray.core import queries
from linkproc_ray.core.store import EventStore
from linkproc_ray.errors import AITimeout, ParseTimeout
from linkproc_ray.pipeline.enricher import Lanes, run_inline
from linkproc_ray.summarize.protocol import Summary, SummaryRequest


def article(page_server, n: int = 0) -> str:
    return page_server.article_url(article_ids()[n])


async def test_a_saved_link_gets_metadata_summary_and_one_terminal_event(tmp_path, page_server):
    async with Org(tmp_path, page_server.host_port) as org:
        org.new_processor()
        link, _ = await org.backend.create_link(article(page_server), "127.0.0.1", None, "a")
        await org.wait_terminal(["a"])
        names = await org.names_for("a")
        assert names == one_clean_run(names)
        done = await org.backend.get_link("a")
        assert done["processing"]["status"] == "completed"
        assert done["metadata"]["title"]
        assert done["summary"]["text"]


async def test_work_is_found_without_any_poke(tmp_path, page_server):
    # The backend never pokes; the live pull alone must discover the link.
    async with Org(tmp_path, page_server.host_port, poke=False) as org:
        await org.new_processor().ensure_booted()
        await org.backend.create_link(article(page_server), "127.0.0.1", None, "a")
        await org.wait_terminal(["a"])
        names = await org.names_for("a")
        assert names == one_clean_run(names)


async def test_a_poke_before_the_event_is_visible_loses_nothing(tmp_path, page_server):
    async with Org(tmp_path, page_server.host_port, poke=False) as org:
        processor = org.new_processor()
        await processor.poke()  # nothing to see yet
        await org.backend.push(0, [link_created("a", article(page_server))])
        await org.wait_terminal(["a"])
        names = await org.names_for("a")
        assert names == one_clean_run(names)


async def test_a_processor_that_missed_every_poke_catches_up_at_boot(tmp_path, page_server):
    async with Org(tmp_path, page_server.host_port) as org:
        for i in range(3):
            await org.backend.create_link(article(page_server, i), "127.0.0.1", None, f"l{i}")
        org.new_processor()
        await org.processor.poke()
        await org.wait_terminal(["l0", "l1", "l2"])
        for link_id in ("l0", "l1", "l2"):
            names = await org.names_for(link_id)
            assert names == one_clean_run(names)


async def test_many_rapid_links_and_duplicate_pokes_end_exactly_once(tmp_path, page_server):
    async with Org(tmp_path, page_server.host_port) as org:
        processor = org.new_processor()
        ids = [f"l{i}" for i in range(20)]
        await asyncio.gather(
            *(org.backend.create_link(article(page_server, i), "127.0.0.1", None, lid) for i, lid in enumerate(ids)),
            *(processor.poke() for _ in range(20)),
        )
        await org.wait_terminal(ids, timeout=60)
        assert set((await org.terminal_counts()).values()) == {1}
        assert set((await org.started_counts()).values()) == {1}


async def test_a_burst_is_decided_by_the_links_its_events_name_not_by_rereading_every_pending_link(
    tmp_path, page_server, monkeypatch
):
    # Re-reading every pending link after every batch costs the square of a burst's size.
    looks: list[set[str] | None] = []
    pending_links = queries.pending_links

    async def recorded(store, among=None):  # type: ignore[no-untyped-def]
        looks.append(None if among is None else set(among))
        return await pending_links(store, among)

    monkeypatch.setattr(queries, "pending_links", recorded)
    async with Org(tmp_path, page_server.host_port, poke=False) as org:
        await org.new_processor().ensure_booted()  # never poked: the live pull alone brings the work
        ids = [f"l{i}" for i in range(40)]
        for batch in range(0, len(ids), 10):
            await org.backend.append(
                [
                    ev.LinkCreated(id=i, url=page_server.url(f"/missing/{i}"), domain="127.0.0.1", createdAt="t")
                    for i in ids[batch : batch + 10]
                ]
            )
        await org.wait_terminal(ids)
        await org.settled()
        assert set((await org.terminal_counts()).values()) == {1}
        narrow = [among for among in looks if among is not None]
        assert narrow and all(among <= set(ids) for among in narrow)
        # Full looks: the session's first, and each time nothing was left in flight.
        assert looks.count(None) < len(narrow)


async def test_crash_mid_processing_resumes_without_a_second_started(tmp_path, page_server):
    slow = page_server.drip("/slow", interval=0.2, count=10)
    async with Org(tmp_path, page_server.host_port) as org:
        org.new_processor()
        await org.backend.create_link(slow, "127.0.0.1", None, "a")
        await org.wait_for_event("a", "v1.LinkProcessingStarted")
        await org.crash_processor()
        org.new_processor()
        await org.processor.poke()
        await org.wait_terminal(["a"])
        names = await org.names_for("a")
        assert names.count("v1.LinkProcessingStarted") == 1
        assert names.count("v1.LinkProcessingResumed") == 1
        resumed = [e for e in await org.log() if e.name == "v1.LinkProcessingResumed"]
        assert resumed[0].args["attempt"] == 2


async def test_a_link_that_keeps_crashing_fails_interrupted_at_the_attempt_cap(tmp_path, page_server):
    async with Org(tmp_path, page_server.host_port, poke=False) as org:
        url = article(page_server)
        await org.backend.push(0, [link_created("a", url), started("a")])
        await org.backend.push(2, [event("v1.LinkProcessingResumed", linkId="a", attempt=2, updatedAt="t")])
        await org.backend.push(3, [event("v1.LinkProcessingResumed", linkId="a", attempt=3, updatedAt="t")])
        await org.new_processor().poke()
        await org.wait_terminal(["a"])
        failed = [e for e in await org.log() if e.name == "v1.LinkProcessingFailed"]
        assert [e.args["error"] for e in failed] == ["interrupted"]
        assert "v1.LinkMetadataFetched" not in await org.names_for("a")


async def test_deleting_a_link_in_flight_cancels_it_and_nothing_follows(tmp_path, page_server):
    slow = page_server.drip("/slow", interval=0.2, count=50)
    async with Org(tmp_path, page_server.host_port) as org:
        org.new_processor()
        await org.backend.create_link(slow, "127.0.0.1", None, "a")
        await org.wait_for_event("a", "v1.LinkProcessingStarted")
        await org.backend.append([ev.LinkDeleted(id="a", deletedAt="t")])
        await org.wait_terminal(["a"])
        await org.settled()
        names = await org.names_for("a")
        assert names[names.index("v1.LinkDeleted") + 1 :] == ["v1.LinkProcessingCancelled"]


async def test_reprocess_appends_new_results_and_keeps_history(tmp_path, page_server):
    async with Org(tmp_path, page_server.host_port) as org:
        org.new_processor()
        await org.backend.create_link(article(page_server), "127.0.0.1", None, "a")
        await org.wait_terminal(["a"])
        await org.backend.append([ev.LinkReprocessRequested(linkId="a", requestedAt="t")])

        async def processed_twice() -> bool:
            return (await org.names_for("a")).count("v1.LinkProcessingCompleted") == 2

        await org.wait_until(processed_twice)
        names = await org.names_for("a")
        assert names.count("v1.LinkProcessingStarted") == 2
        assert names.count("v1.LinkMetadataFetched") == 2
        assert names.count("v1.LinkSummarized") == 2
        link = await org.backend.get_link("a")
        assert link["processing"] == {**link["processing"], "status": "completed", "error": None, "attempts": 1}


async def test_a_fetch_failure_is_a_typed_terminal_failure(tmp_path, page_server):
    missing = page_server.page("/missing", "<html>gone</html>", status=404)
    async with Org(tmp_path, page_server.host_port) as org:
        org.new_processor()
        await org.backend.create_link(missing, "127.0.0.1", None, "a")
        await org.wait_terminal(["a"])
        link = await org.backend.get_link("a")
        assert link["processing"]["status"] == "failed"
        assert link["processing"]["error"] == "fetch:404"


class HungModel:
    """Test double for a GPU model that never answers (the one part that cannot run here)."""

    model = "hung-model"

    async def summarize(self, request: SummaryRequest) -> Summary:
        await asyncio.sleep(3600)
        raise AITimeout("unreachable")


async def test_a_hung_summarizer_does_not_stop_fetching_other_links(tmp_path, page_server):
    async with Org(tmp_path, page_server.host_port) as org:
        org.new_processor(summarizer=HungModel(), lanes=Lanes(fetch=8, summarize=1))
        ids = [f"l{i}" for i in range(4)]
        for i, lid in enumerate(ids):
            await org.backend.create_link(article(page_server, i), "127.0.0.1", None, lid)

        async def all_have_metadata() -> bool:
            fetched = {e.args["linkId"] for e in await org.log() if e.name == "v1.LinkMetadataFetched"}
            return fetched == set(ids)

        await org.wait_until(all_have_metadata)
        assert not await org.terminal_counts()


async def test_many_concurrent_wakes_open_the_store_once(tmp_path, page_server):
    async with Org(tmp_path, page_server.host_port) as org:
        processor = org.new_processor()
        before = EventStore.opened
        await asyncio.gather(*(processor.poke() for _ in range(50)), *(processor.ensure_booted() for _ in range(50)))
        assert EventStore.opened - before == 1


async def test_a_processor_that_comes_back_fetches_only_the_missing_events(tmp_path, page_server):
    async with Org(tmp_path, page_server.host_port, poke=False) as org:
        await org.backend.push(
            0, [event("v1.TagCreated", id=f"t{i}", name=f"tag{i}", createdAt="t") for i in range(10)]
        )
        processor = org.new_processor()
        await processor.ensure_booted()
        await org.wait_until(lambda: _at(processor, 10))
        await org.crash_processor()
        await org.backend.push(
            10, [event("v1.TagCreated", id=f"u{i}", name=f"more{i}", createdAt="t") for i in range(7)]
        )
        again = org.new_processor()
        await again.store.open()
        assert again.head == 10
        assert await again.catch_up() == 7


async def _at(processor, head: int) -> bool:
    return processor.head >= head


class FlakyPushes:
    """The real backend, except that its next ``failures`` pushes raise (a broken push path)."""

    def __init__(self, backend, failures: int) -> None:
        self.backend = backend
        self.failures = failures

    async def push(self, parent, events):
        if self.failures > 0:
            self.failures -= 1
            raise RuntimeError("push path broken")
        return await self.backend.push(parent, events)

    async def pull(self, after=0, limit=1000, wait=0.0):
        return await self.backend.pull(after, limit, wait)


async def test_a_broken_push_path_restarts_the_session_visibly_and_the_link_still_finishes(tmp_path, page_server):
    async with Org(tmp_path, page_server.host_port) as org:
        processor = org.new_processor()
        processor.backend = FlakyPushes(org.backend, failures=7)
        await org.backend.create_link(article(page_server), "127.0.0.1", None, "a")
        await org.wait_terminal(["a"], timeout=60)
        assert processor.session_restarts >= 1
        assert (await org.terminal_counts())["a"] == 1
        assert (await org.started_counts())["a"] == 1, "failed pushes stored nothing, so Started is stored once"


async def test_the_inline_runner_abandons_a_step_past_its_timeout():
    with pytest.raises(ParseTimeout):
        await run_inline(time.sleep, 5, timeout=0.2)
