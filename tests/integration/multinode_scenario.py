"""Node loss on a multi-node Ray cluster (several raylets on this machine): nothing acknowledged is lost.

Run as ``python -m tests.integration.multinode_scenario`` in its own process: a
process can join only one Ray cluster, and the integration suite holds another.
Prints one JSON summary line and exits 1 when a check fails.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import ray
from ray import serve
from ray.cluster_utils import Cluster
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
from tests.pages import PageServer, article_ids

from linkproc_ray.adapters.actors import (
    ActorBackend,
    LinkProcessorActor,
    SyncBackendActor,
    actor_options,
    backend_handle,
    backend_name,
    processor_name,
)
from linkproc_ray.adapters.serve import SummarizerDeployment
from linkproc_ray.config import NAMESPACE, Settings
from linkproc_ray.core.events import Event, new_id
from linkproc_ray.errors import Unavailable

ORGS = ("north-0", "south-1", "north-2", "south-3")
LINKS_PER_ORG = 10
# The node is removed once this share of the burst has been acknowledged,
# so links are being created, fetched and summarized when it goes.
LOSS_AFTER = 0.4
# Stands for the GPU node's label in cluster/*.yaml: only the summarizer asks for it.
SUMMARIZER_RESOURCE = "summarizer_gpu"
TERMINAL = frozenset({"v1.LinkProcessingCompleted", "v1.LinkProcessingFailed", "v1.LinkProcessingCancelled"})
SETTLE_TIMEOUT = 180.0
# What each worker node offers Ray's scheduler: 16 org actors at the default
# reservation (LINKPROC_ACTOR_MEMORY_MB=64), so a dozen orgs fill one past half.
WORKER_MEMORY = 1024 * 2**20
PLACED_BY_RAY = 12


@dataclass
class Summary:
    """What the scenario saw; ``ok`` only if every check held."""

    orgs: int = len(ORGS)
    links: int = 0
    acknowledged: int = 0
    worker_nodes_used: int = 0
    backends_by_worker: list[int] = field(default_factory=list)
    """Where Ray put the backends one ingress-like owner on the first worker created: per worker node."""
    most_backends_a_worker_holds: int = 0
    lost_orgs: list[str] = field(default_factory=list)
    events_before_loss: int = 0
    events_lost: int = 0
    recover_s: float = 0.0
    settle_s: float = 0.0
    client_retries: int = 0
    settle_retries: int = 0
    duplicate_event_ids: int = 0
    duplicate_links: int = 0
    links_without_one_terminal: int = 0
    links_started_twice: int = 0
    resumed: int = 0
    failed_links: int = 0
    lost_orgs_on_survivor: bool = False
    anomalies: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def start_cluster() -> tuple[Cluster, list[Any]]:
    """A head that holds only the driver, Serve's controller and the summarizer, and two worker nodes.

    The head has no CPUs, so org actors and parsing tasks can only land on
    the workers, as on the cloud cluster (head ``CPU: 0``, GPU group labelled).
    """
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 0, "resources": {SUMMARIZER_RESOURCE: 1}, "include_dashboard": False},
    )
    workers = [cluster.add_node(num_cpus=2, memory=WORKER_MEMORY) for _ in range(2)]
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, namespace=NAMESPACE, log_to_driver=False, logging_level="WARNING")
    return cluster, workers


def start_summarizer(settings: Settings) -> None:
    """Only the summarizer deployment: the scenario drives the actors the way the ingress does."""
    serve.start(proxy_location="Disabled", logging_config={"enable_access_log": False})
    deployment = SummarizerDeployment.options(ray_actor_options={"num_cpus": 0, "resources": {SUMMARIZER_RESOURCE: 1}})
    serve.run(deployment.bind(settings.to_actor_args()), name=settings.serve_app_name, route_prefix=None)


def place_org(org: str, node_id: str, settings: Settings) -> None:
    """Create an org's two actors on ``node_id``; soft, so a restart may go to any other node.

    Production leaves placement to Ray; the test pins the first placement so
    that both worker nodes hold orgs and it knows which node to remove.
    """
    pin = NodeAffinitySchedulingStrategy(node_id, soft=True)
    args = settings.to_actor_args()
    for cls, name in ((SyncBackendActor, backend_name(org)), (LinkProcessorActor, processor_name(org))):
        cls.options(**actor_options(name, settings), scheduling_strategy=pin).remote(org, args)  # type: ignore[attr-defined]


def actor_node_id(_actor: object) -> str:
    """Run inside an actor with ``__ray_call__``: the node it runs on."""
    return ray.get_runtime_context().get_node_id()


@ray.remote(num_cpus=0)
class Owner:
    """Stands for an ingress replica: creates org backends from its node, one save at a time."""

    async def wake(self, orgs: list[str], settings: dict[str, Any]) -> list[str]:
        """Create each org's backend and wait until it answers; the node each one runs on."""
        org_settings = Settings(**settings)
        nodes = []
        for org in orgs:
            backend = backend_handle(org, org_settings)
            nodes.append(await backend.__ray_call__.remote(actor_node_id))
        return nodes


async def place_by_ray(summary: Summary, workers: list[Any], settings: Settings) -> None:
    """Let Ray place the backends of orgs woken from the first worker, as the ingress's saves would.

    Ray's scheduler keeps an actor on its owner's node until that node is half
    used, and it counts only what actors reserve: each org actor's memory is
    what spreads them before one node fills up.
    """
    pin = NodeAffinitySchedulingStrategy(workers[0].node_id, soft=False)
    owner = Owner.options(scheduling_strategy=pin).remote()  # type: ignore[attr-defined]
    orgs = [f"placed-{i}" for i in range(PLACED_BY_RAY)]
    nodes = await owner.wake.remote(orgs, settings.to_actor_args())
    summary.backends_by_worker = [nodes.count(worker.node_id) for worker in workers]
    reserved = settings.actor_memory_mb * 2**20
    cap = WORKER_MEMORY // reserved if reserved else PLACED_BY_RAY
    summary.most_backends_a_worker_holds = cap
    if 0 in summary.backends_by_worker:
        summary.problems.append(f"Ray kept every backend on one worker: {summary.backends_by_worker}")
    if max(summary.backends_by_worker) > cap:
        summary.problems.append(f"a worker holds more backends than its memory: {summary.backends_by_worker}")
    for org in orgs:
        ray.kill(ray.get_actor(backend_name(org), namespace=NAMESPACE), no_restart=True)
    ray.kill(owner)


async def node_of(org: str) -> tuple[str, str]:
    """The node ids the org's backend and processor run on now."""
    backend = ray.get_actor(backend_name(org), namespace=NAMESPACE)
    processor = ray.get_actor(processor_name(org), namespace=NAMESPACE)
    return await backend.__ray_call__.remote(actor_node_id), await processor.__ray_call__.remote(actor_node_id)


async def read_log(backend: ActorBackend) -> list[Event]:
    events: list[Event] = []
    while True:
        page = await backend.pull(after=len(events), limit=1000)
        events.extend(page.events)
        if len(events) >= page.head:
            return events


class Burst:
    """Clients saving links in every org, retrying each link until it is acknowledged.

    A retry reuses the link's id and URL, so the backend answers the link it
    already stored instead of storing it twice (as a client retrying a POST).
    """

    def __init__(self, backends: dict[str, ActorBackend], urls: dict[str, list[str]]) -> None:
        self.backends = backends
        self.urls = urls
        self.acked: dict[str, set[str]] = {org: set() for org in backends}
        self.ack_times: dict[str, list[float]] = {org: [] for org in backends}
        self.retries = 0
        self.total = sum(len(u) for u in urls.values())

    @property
    def acknowledged(self) -> int:
        return sum(len(ids) for ids in self.acked.values())

    async def run(self) -> None:
        await asyncio.gather(*(self._client(org) for org in self.backends))

    async def _client(self, org: str) -> None:
        for url in self.urls[org]:
            link_id = new_id()
            while True:
                try:
                    link, _ = await self.backends[org].create_link(url, "127.0.0.1", "multinode", link_id)
                    break
                # The client boundary: whatever the cluster answers while a
                # node is gone (a Ray error, or the 503 of an actor that is
                # not back yet), the link is not acknowledged and is sent again.
                except (ray.exceptions.RayError, Unavailable):
                    self.retries += 1
                    await asyncio.sleep(0.5)
            self.acked[org].add(str(link["id"]))
            self.ack_times[org].append(time.monotonic())
            await asyncio.sleep(0.05)


async def settle(
    summary: Summary, backends: dict[str, ActorBackend], link_ids: dict[str, set[str]]
) -> dict[str, list[Event]]:
    """Wait until every acknowledged link has a terminal event; the final logs."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while True:
        try:
            logs = {org: await read_log(backend) for org, backend in backends.items()}
        except Unavailable:
            # A lost org whose clients were done before the loss is read here first:
            # its actors come back once the GCS has declared the node dead (about
            # 15 s of missed health checks), which can outlast one call's patience.
            # A 503 means "retry later", as it does for any client.
            summary.settle_retries += 1
            if time.monotonic() > deadline:
                raise
            continue
        done = {
            org: {e.args.get("linkId") for e in log if e.name in TERMINAL} >= link_ids[org] for org, log in logs.items()
        }
        if all(done.values()) or time.monotonic() > deadline:
            return logs
        await asyncio.sleep(1.0)


def check_logs(
    summary: Summary, before: dict[str, list[Event]], after: dict[str, list[Event]], acked: dict[str, set[str]]
) -> None:
    for org, log in after.items():
        seqs = [e.seq for e in log]
        if seqs != list(range(1, len(log) + 1)):
            summary.problems.append(f"{org}: seqs are not 1..{len(log)} without gaps")
        by_seq = {e.seq: e.id for e in log}
        lost = [e for e in before[org] if by_seq.get(e.seq) != e.id]
        summary.events_lost += len(lost)
        summary.duplicate_event_ids += len(log) - len({e.id for e in log})
        created = Counter(str(e.args["id"]) for e in log if e.name == "v1.LinkCreated")
        summary.duplicate_links += sum(n - 1 for n in created.values())
        missing = acked[org] - set(created)
        if missing:
            summary.problems.append(f"{org}: {len(missing)} acknowledged links have no LinkCreated")
        history: dict[str, list[Event]] = {link: [] for link in created}
        for e in log:
            if e.args.get("linkId") in history:
                history[e.args["linkId"]].append(e)
        for link, events in history.items():
            names = Counter("terminal" if e.name in TERMINAL else e.name for e in events)
            summary.failed_links += any(e.name == "v1.LinkProcessingFailed" for e in events)
            summary.resumed += names["v1.LinkProcessingResumed"]
            if names["terminal"] != 1 or names["v1.LinkProcessingStarted"] != 1:
                summary.links_without_one_terminal += names["terminal"] != 1
                summary.links_started_twice += names["v1.LinkProcessingStarted"] > 1
                story = ", ".join(f"{e.seq}:{e.name.removeprefix('v1.')}@{e.session_id}" for e in events)
                summary.anomalies.append(f"{org}/{link}: {story}")
    for name in ("events_lost", "duplicate_event_ids", "duplicate_links", "links_without_one_terminal"):
        if getattr(summary, name):
            summary.problems.append(f"{name} = {getattr(summary, name)}")
    if summary.links_started_twice:
        summary.problems.append(f"{summary.links_started_twice} links got a second Started instead of Resumed")


async def scenario(cluster: Cluster, workers: list[Any], pages: PageServer, data_dir: Path) -> Summary:
    summary = Summary()
    settings = Settings(
        data_dir=data_dir,
        jwt_secret="multinode-secret-long-enough-for-hs256",
        fetch_allow_hosts=pages.host_port,
        sweep_interval=2.0,
        fetch_timeout=10.0,
        # Summaries from a deployment on the "GPU" head, as a model's would be in production.
        summarizer="serve",
    )
    start_summarizer(settings)
    await place_by_ray(summary, workers, settings)
    for index, org in enumerate(ORGS):
        place_org(org, workers[index % 2].node_id, settings)
    placed = {org: await node_of(org) for org in ORGS}
    summary.worker_nodes_used = len({node for pair in placed.values() for node in pair})

    victim, survivor = workers
    summary.lost_orgs = [org for org, pair in placed.items() if victim.node_id in pair]
    page_ids = iter(article_ids())
    urls = {org: [pages.article_url(next(page_ids)) for _ in range(LINKS_PER_ORG)] for org in ORGS}
    backends = {org: ActorBackend(org, settings) for org in ORGS}
    burst = Burst(backends, urls)
    summary.links = burst.total

    clients = asyncio.ensure_future(burst.run())
    while burst.acknowledged < LOSS_AFTER * burst.total:
        await asyncio.sleep(0.05)
    # Everything acknowledged so far is committed, so a pull returns it.
    before = {org: await read_log(backend) for org, backend in backends.items()}
    summary.events_before_loss = sum(len(log) for log in before.values())
    lost_at = time.monotonic()
    await asyncio.to_thread(cluster.remove_node, victim, allow_graceful=False)
    await clients
    summary.acknowledged = burst.acknowledged
    summary.client_retries = burst.retries
    # Recovered: every org that lived on the lost node acknowledged a link again.
    first_acks = [min((t for t in burst.ack_times[org] if t > lost_at), default=lost_at) for org in summary.lost_orgs]
    summary.recover_s = round(max(first_acks) - lost_at, 2)

    after = await settle(summary, backends, burst.acked)
    summary.settle_s = round(time.monotonic() - lost_at, 2)
    check_logs(summary, before, after, burst.acked)
    moved = [await node_of(org) for org in summary.lost_orgs]
    summary.lost_orgs_on_survivor = all(pair == (survivor.node_id, survivor.node_id) for pair in moved)
    if summary.worker_nodes_used != 2:
        summary.problems.append(f"org actors used {summary.worker_nodes_used} worker nodes, not 2")
    if not summary.lost_orgs_on_survivor:
        summary.problems.append("the lost orgs' actors are not on the surviving node")
    if summary.acknowledged != summary.links:
        summary.problems.append(f"only {summary.acknowledged} of {summary.links} links were acknowledged")
    return summary


def main(argv: list[str]) -> int:
    """Run the scenario; its JSON summary goes to the file named by ``argv[0]``.

    A file, not stdout: the raylets' log lines reach this process's stdout too.
    """
    summary_path = Path(argv[0])
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    cluster, workers = start_cluster()
    try:
        # All raylets share this disk: it stands for the cluster's shared volume.
        with PageServer() as pages, tempfile.TemporaryDirectory(prefix="linkproc-multinode-") as data_dir:
            summary = asyncio.run(scenario(cluster, workers, pages, Path(data_dir)))
    finally:
        serve.shutdown()
        ray.shutdown()
        cluster.shutdown()
    summary_path.write_text(json.dumps({**asdict(summary), "ok": summary.ok}))
    return 0 if summary.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
