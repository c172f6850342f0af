"""A capacity model: what a cluster of N nodes holds, from the per-org figures the benchmarks measure.

Inputs are measured, not guessed: a live org's memory (PSS) and idle CPU
(``org_capacity.py``), the cluster CPU one wake costs and the GCS bytes one
dead actor entry keeps and an org's files on disk (``churn.py``), and the CPU one link
costs, its events' included (``burst.py``). The model says how many orgs live at once per node, how many
wakes and links per second the cluster does, and how many orgs it holds in
all under a stated activity mix. ``main`` prints the answer for 10,000 orgs
and checks the model against this machine's own runs.

    python benchmarks/capacity_model.py        # reads benchmarks/results/*.json, writes capacity_model.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
DAY_S = 86_400.0
MIB = 1024 * 1024


@dataclass(frozen=True)
class Node:
    """A node size to plan for, and what Ray keeps for itself on it."""

    vcpus: int
    memory_gib: float
    # Ray reserves 30% of memory for the object store by default, and its own
    # daemons (raylet, agents, log monitor, a Serve proxy) take about 1 GiB;
    # Ray's memory monitor kills workers above 95% of the node's memory.
    object_store_share: float = 0.30
    daemons_gib: float = 1.0
    memory_monitor_threshold: float = 0.95

    @property
    def usable_mib(self) -> float:
        """Memory left for org actors before the memory monitor starts killing workers."""
        usable_gib = self.memory_gib * (self.memory_monitor_threshold - self.object_store_share) - self.daemons_gib
        return max(0.0, usable_gib * 1024)


@dataclass(frozen=True)
class LiveOrg:
    """What one live org (both actors, booted, idle between links) holds on its node."""

    pss_mib: float
    """PSS counts the pages both actors share with other workers once: the measure for many similar processes."""
    idle_cpu_cores: float
    logical_cpus: float
    """Ray's ``num_cpus`` of both actors: the scheduler places no more than the node's CPUs allow."""
    reserved_memory_mib: float = 0.0
    """Ray's ``memory`` of both actors: the scheduler places no more than the node's memory allows (0: no cap)."""


@dataclass(frozen=True)
class OrgFigures:
    """What one org costs, as measured on a node."""

    live: LiveOrg
    cpu_s_per_wake: float
    """Cluster CPU to create both actors and process the waking save."""
    cpu_s_per_link: float
    """Cluster CPU to fetch, parse, summarize and record one link on a live org, its events included."""
    gcs_bytes_per_actor_entry: float
    gcs_bytes_per_wake_past_bounds: float
    """What the GCS's RSS still grows by per wake with its caches full: memory its allocator keeps, not entries
    (``results/churn-diagnosis``)."""
    disk_bytes_per_org: float
    """Both SQLite files of an org with a few links: the floor every org keeps on the shared volume."""
    actors_per_wake: int = 2


@dataclass(frozen=True)
class Mix:
    """How orgs use the system: the assumptions the answer rests on, named."""

    sessions_per_org_per_day: float = 4.0
    """Times a day an org wakes (each session then stays live for ``live_s_per_session``)."""
    live_s_per_session: float = 600.0 + 120.0
    """The idle TTL (600 s) plus the time its links are being worked on."""
    links_per_session: float = 5.0
    peak_factor: float = 3.0
    """The busiest hour against the day's mean (a Monday morning)."""
    cpu_share_for_orgs: float = 0.7
    """Of each node's cores, what org actors, parsing and summaries may use (the rest: Serve, daemons, headroom)."""
    idle_cpu_share: float = 0.5
    """Of each node's cores, the most the live orgs may burn doing nothing."""
    destroyed_actor_cache: int = 100_000
    """``maximum_gcs_destroyed_actor_cached_count``: dead actor entries the GCS keeps."""


def live_orgs_per_node(live: LiveOrg, node: Node, mix: Mix = Mix()) -> dict[str, int]:
    """Live orgs one node holds under each limit (memory, idle CPU, Ray's logical CPUs)."""
    return {
        "memory": int(node.usable_mib / live.pss_mib),
        "idle_cpu": int(node.vcpus * mix.idle_cpu_share / max(live.idle_cpu_cores, 1e-9)),
        "ray_logical_cpus": int(node.vcpus / live.logical_cpus),
        # Ray offers its scheduler the memory the object store does not take.
        "ray_logical_memory": (
            int(node.memory_gib * 1024 * (1 - node.object_store_share) / live.reserved_memory_mib)
            if live.reserved_memory_mib
            else sys.maxsize
        ),
    }


def wakes_per_second(figures: OrgFigures, node: Node, nodes: int, mix: Mix = Mix()) -> float:
    """Wakes the cluster can do per second if waking were all its org CPU did."""
    return nodes * node.vcpus * mix.cpu_share_for_orgs / figures.cpu_s_per_wake


def links_per_second(figures: OrgFigures, node: Node, nodes: int, mix: Mix = Mix()) -> float:
    """Links per second at the mix: each session's wake is paid by its links."""
    per_link = figures.cpu_s_per_link + figures.cpu_s_per_wake / mix.links_per_session
    return nodes * node.vcpus * mix.cpu_share_for_orgs / per_link


def gcs_dead_entries_mib(figures: OrgFigures, orgs: int, mix: Mix = Mix()) -> float:
    """The GCS memory the dead actor entries of a day take, up to the cache bound."""
    per_day = orgs * mix.sessions_per_org_per_day * figures.actors_per_wake
    return min(per_day, mix.destroyed_actor_cache) * figures.gcs_bytes_per_actor_entry / MIB


def gcs_growth_mib_per_day(figures: OrgFigures, orgs: int, mix: Mix = Mix()) -> float:
    """The GCS growth no setting bounds: a day's wakes times what each still leaves (restarts release it)."""
    return orgs * mix.sessions_per_org_per_day * figures.gcs_bytes_per_wake_past_bounds / MIB


def disk_gib(figures: OrgFigures, orgs: int) -> float:
    """The shared volume's floor for ``orgs``: what each keeps before its links add up."""
    return orgs * figures.disk_bytes_per_org / 2**30


def orgs_in_all(figures: OrgFigures, node: Node, nodes: int, mix: Mix = Mix()) -> dict[str, int]:
    """Orgs the cluster holds in all: at the busiest hour, their live ones fit and their wakes keep up."""
    live = nodes * min(live_orgs_per_node(figures.live, node, mix).values())
    live_share_at_peak = min(1.0, mix.sessions_per_org_per_day * mix.live_s_per_session / DAY_S * mix.peak_factor)
    wakes_per_org_s_at_peak = mix.sessions_per_org_per_day / DAY_S * mix.peak_factor
    links_per_org_s_at_peak = wakes_per_org_s_at_peak * mix.links_per_session
    return {
        "by_live_memory_and_cpu": int(live / live_share_at_peak),
        "by_wake_rate": int(wakes_per_second(figures, node, nodes, mix) / wakes_per_org_s_at_peak),
        "by_link_rate": int(links_per_second(figures, node, nodes, mix) / links_per_org_s_at_peak),
    }


def plan(figures: OrgFigures, node: Node, nodes: int, mix: Mix = Mix()) -> dict[str, Any]:
    """Everything the model says of one cluster."""
    per_node = live_orgs_per_node(figures.live, node, mix)
    held = orgs_in_all(figures, node, nodes, mix)
    total = min(held.values())
    return {
        "nodes": nodes,
        "node": asdict(node),
        "live_orgs_per_node": per_node,
        "live_orgs_binding": min(per_node, key=per_node.__getitem__),
        "live_orgs_at_once": nodes * min(per_node.values()),
        "wakes_per_s": round(wakes_per_second(figures, node, nodes, mix), 2),
        "links_per_s": round(links_per_second(figures, node, nodes, mix), 2),
        "orgs_in_all": held,
        "orgs_in_all_binding": min(held, key=held.__getitem__),
        "orgs_held": total,
        "gcs_dead_entries_mib_at_that_many_orgs": round(gcs_dead_entries_mib(figures, total, mix), 1),
        "gcs_growth_mib_per_day_at_that_many_orgs": round(gcs_growth_mib_per_day(figures, total, mix), 1),
        "disk_gib_floor_at_that_many_orgs": round(disk_gib(figures, total), 2),
    }


def nodes_for(orgs: int, figures: OrgFigures, node: Node, mix: Mix = Mix()) -> int:
    """The fewest worker nodes of ``node``'s size that hold ``orgs`` under the mix."""
    one = min(orgs_in_all(figures, node, 1, mix).values())
    if one <= 0:
        raise ValueError("one node of this size holds no org: the figures or the mix leave no room")
    nodes = max(1, math.ceil(orgs / one))
    # Every limit is linear in the node count, so the first guess is the answer; this guards rounding.
    while min(orgs_in_all(figures, node, nodes, mix).values()) < orgs:
        nodes += 1
    return nodes


def figures_from_results(results: Path) -> tuple[OrgFigures, dict[str, Any]]:
    """The model's inputs from the benchmarks' JSON files, and the files they came from."""

    def load(*names: str) -> tuple[str, dict[str, Any]]:
        for name in names:
            path = results / name
            if path.exists():
                return name, json.loads(path.read_text())
        raise FileNotFoundError(f"none of {', '.join(names)} in {results}: run that benchmark first")

    capacity_name, capacity = load("org_capacity.json")
    churn_name, churn = load("churn.json", "churn-quick.json")
    burst_name, burst = load("burst.json")
    measured = capacity["measured"]
    figures = OrgFigures(
        live=LiveOrg(
            pss_mib=measured["pss_mib_per_pair"],
            idle_cpu_cores=measured["idle_cpu_cores_per_pair"],
            logical_cpus=measured["logical_cpus_per_pair"],
            reserved_memory_mib=measured.get("reserved_memory_mib_per_pair", 0.0),
        ),
        cpu_s_per_wake=churn["cpu_s_per_wake"],
        cpu_s_per_link=burst["cpu_s"] / burst["links"],
        gcs_bytes_per_actor_entry=churn["gcs_bytes_per_actor_entry"],
        gcs_bytes_per_wake_past_bounds=churn["gcs_bytes_per_wake_past_bounds"] or 0.0,
        disk_bytes_per_org=churn["disk_bytes_per_org"],
    )
    return figures, {"org_capacity": capacity_name, "churn": churn_name, "burst": burst_name, "churn_run": churn}


def check_against_churn(figures: OrgFigures, churn: dict[str, Any], cores: int) -> dict[str, Any]:
    """The model's figures for this machine against what the churn run measured on it."""
    here = Node(vcpus=cores, memory_gib=0.0)
    cpu_bound = wakes_per_second(figures, here, 1, Mix(cpu_share_for_orgs=1.0))
    entries = churn["actor_entries"]["end"] - churn["actor_entries"]["start"]
    past_bounds = max(0, churn["wakes"] - entries // figures.actors_per_wake)
    predicted_gcs = (
        churn["gcs_rss_mb"]["start"]
        + entries * figures.gcs_bytes_per_actor_entry / MIB
        + past_bounds * figures.gcs_bytes_per_wake_past_bounds / MIB
    )
    return {
        "wakes_per_s": {"model_cpu_bound": round(cpu_bound, 3), "measured": churn["wakes_per_s"]},
        "gcs_rss_mb_end": {"model": round(predicted_gcs, 1), "measured": churn["gcs_rss_mb"]["end"]},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--orgs", type=int, default=10_000)
    parser.add_argument("--vcpus", type=int, default=8, help="worker node size to plan for")
    parser.add_argument("--memory-gib", type=float, default=32.0)
    options = parser.parse_args(argv)
    figures, sources = figures_from_results(options.results)
    churn = sources.pop("churn_run")
    node = Node(options.vcpus, options.memory_gib)
    mix = Mix(destroyed_actor_cache=churn["destroyed_actor_cache"])
    needed = nodes_for(options.orgs, figures, node, mix)
    answer = plan(figures, node, needed, mix)
    check = check_against_churn(figures, churn, cores=int(churn["machine"].split(", ")[1].split()[0]))
    sizes = [Node(4, 16.0), Node(8, 32.0), Node(16, 64.0)]
    by_size = [
        {
            "node": f"{size.vcpus} vCPU / {size.memory_gib:g} GiB",
            "nodes_needed": nodes_for(options.orgs, figures, size, mix),
            **{k: v for k, v in plan(figures, size, 1, mix).items() if k not in ("nodes", "node")},
        }
        for size in sizes
    ]
    out = {
        "figures": asdict(figures),
        "sources": sources,
        "mix": asdict(mix),
        "orgs": options.orgs,
        "nodes_needed": needed,
        "plan": answer,
        "per_node_by_size": by_size,
        "check_against_this_machine": check,
    }
    (options.results / "capacity_model.json").write_text(json.dumps(out, indent=2) + "\n")
    print(f"{options.orgs:,} orgs on {options.vcpus} vCPU / {options.memory_gib:g} GiB worker nodes: {needed} nodes")
    print(json.dumps(answer, indent=2))
    print(
        f"\n| worker node | live orgs (memory / idle CPU / logical CPUs / logical memory) | wakes/s | links/s |"
        f" nodes for {options.orgs:,} |"
    )
    print("| --- | --- | ---: | ---: | ---: |")
    for row in by_size:
        live = row["live_orgs_per_node"]
        print(
            f"| {row['node']} | {live['memory']} / {live['idle_cpu']} / {live['ray_logical_cpus']}"
            f" / {live['ray_logical_memory']} |"
            f" {row['wakes_per_s']} | {row['links_per_s']} | {row['nodes_needed']} |"
        )
    print("\ncheck against this machine:", json.dumps(check))
    return 0


if __name__ == "__main__":
    sys.exit(main())
