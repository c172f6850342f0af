"""Losing a worker node mid-burst loses nothing: the multi-node scenario, run in its own process.

The scenario builds its own multi-raylet cluster (``ray.cluster_utils.Cluster``),
which cannot share this process with the session cluster of ``conftest.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
# A guard against a hung cluster, not a performance bound.
SCENARIO_TIMEOUT = 600


@pytest.fixture(scope="module")
def node_loss(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The scenario's JSON summary, from the file it writes (its stdout also carries Ray's log lines)."""
    summary_path = tmp_path_factory.mktemp("multinode") / "summary.json"
    run = subprocess.run(
        [sys.executable, "-m", "tests.integration.multinode_scenario", str(summary_path)],
        cwd=ROOT,
        check=False,  # a failed run still writes its summary, which the tests below explain
        capture_output=True,
        text=True,
        timeout=SCENARIO_TIMEOUT,
    )
    assert summary_path.exists(), f"the scenario wrote no summary; stderr:\n{run.stderr[-4000:]}"
    summary: dict[str, Any] = json.loads(summary_path.read_text())
    return summary


def test_org_actors_were_spread_over_two_worker_nodes(node_loss):
    assert node_loss["worker_nodes_used"] == 2
    assert node_loss["lost_orgs"]


def test_ray_places_org_actors_on_every_worker_by_their_memory(node_loss):
    # One owner (as an ingress replica) woke 12 orgs; each worker offers memory for 16 org actors.
    on_each = node_loss["backends_by_worker"]
    assert sum(on_each) == 12
    assert min(on_each) > 0, "Ray kept every org on the owner's node"
    assert max(on_each) <= node_loss["most_backends_a_worker_holds"]


def test_every_event_acknowledged_before_the_node_loss_survives(node_loss):
    assert node_loss["events_before_loss"] > 0
    assert node_loss["events_lost"] == 0


def test_every_link_of_the_burst_is_acknowledged_once(node_loss):
    assert node_loss["acknowledged"] == node_loss["links"]
    assert node_loss["duplicate_links"] == 0
    assert node_loss["duplicate_event_ids"] == 0


def test_every_link_ends_with_exactly_one_terminal_event_and_restarts_are_resumes(node_loss):
    assert node_loss["links_without_one_terminal"] == 0
    assert node_loss["links_started_twice"] == 0, node_loss["anomalies"]


def test_the_lost_orgs_actors_come_back_on_the_surviving_node(node_loss):
    assert node_loss["lost_orgs_on_survivor"]


def test_the_scenario_found_no_other_problem(node_loss):
    assert node_loss["ok"], node_loss["problems"]
