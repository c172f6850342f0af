"""The capacity model's arithmetic (benchmarks/capacity_model.py), on round figures one can check by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from benchmarks.capacity_model import (
    LiveOrg,
    Mix,
    Node,
    OrgFigures,
    figures_from_results,
    gcs_dead_entries_mib,
    gcs_growth_mib_per_day,
    links_per_second,
    live_orgs_per_node,
    nodes_for,
    orgs_in_all,
    plan,
    wakes_per_second,
)

FIGURES = OrgFigures(
    live=LiveOrg(pss_mib=100.0, idle_cpu_cores=0.01, logical_cpus=0.1, reserved_memory_mib=160.0),
    cpu_s_per_wake=2.0,
    cpu_s_per_link=0.1,
    gcs_bytes_per_actor_entry=1024.0,
    gcs_bytes_per_wake_past_bounds=10 * 1024.0,
    disk_bytes_per_org=100 * 1024,
)
# 10 GiB node: 10 * (0.95 - 0.30) - 1 = 5.5 GiB usable = 5,632 MiB.
NODE = Node(vcpus=4, memory_gib=10.0)


def test_usable_memory_leaves_out_the_object_store_the_daemons_and_the_monitors_margin():
    assert NODE.usable_mib == pytest.approx(5.5 * 1024)
    assert Node(vcpus=1, memory_gib=1.0).usable_mib == 0.0  # a node too small for anything holds nothing


def test_live_orgs_per_node_under_each_limit():
    limits = live_orgs_per_node(FIGURES.live, NODE)
    assert limits == {
        "memory": 56,  # 5,632 MiB / 100 MiB
        "idle_cpu": 200,  # 4 cores * 0.5 / 0.01
        "ray_logical_cpus": 40,  # 4 CPUs / 0.1
        "ray_logical_memory": 44,  # 10 GiB * 0.7 (what the object store leaves) / 160 MiB
    }


def test_no_memory_reserved_leaves_the_scheduler_without_a_memory_cap():
    live = LiveOrg(pss_mib=100.0, idle_cpu_cores=0.01, logical_cpus=0.1)
    assert live_orgs_per_node(live, NODE)["ray_logical_memory"] > live_orgs_per_node(live, NODE)["memory"]


def test_wakes_and_links_per_second_scale_with_nodes():
    mix = Mix(cpu_share_for_orgs=0.5, links_per_session=4.0)
    assert wakes_per_second(FIGURES, NODE, 1, mix) == pytest.approx(1.0)  # 4 cores * 0.5 / 2 s
    assert wakes_per_second(FIGURES, NODE, 3, mix) == pytest.approx(3.0)
    # A link pays 0.1 s plus a quarter of its session's 2 s wake: 0.6 s; 2 cores' worth / 0.6.
    assert links_per_second(FIGURES, NODE, 1, mix) == pytest.approx(2 / 0.6)


def test_orgs_in_all_are_bound_by_the_busiest_hour():
    mix = Mix(sessions_per_org_per_day=4, live_s_per_session=720, links_per_session=5, peak_factor=3)
    held = orgs_in_all(FIGURES, NODE, 1, mix)
    # 4 sessions * 720 s / 86,400 s * 3 = 10 % of orgs live at the peak; 40 live fit: 400 orgs.
    assert held["by_live_memory_and_cpu"] == 400
    # Each org wakes 4 * 3 / 86,400 times a second at the peak; the node wakes 4 * 0.7 / 2 = 1.4 a second.
    assert held["by_wake_rate"] == int(1.4 / (12 / 86_400))
    assert plan(FIGURES, NODE, 1, mix)["orgs_in_all_binding"] == "by_live_memory_and_cpu"


def test_every_org_live_at_once_is_the_ceiling_of_the_live_share():
    always_on = Mix(sessions_per_org_per_day=24, live_s_per_session=3600, peak_factor=3)
    assert orgs_in_all(FIGURES, NODE, 1, always_on)["by_live_memory_and_cpu"] == 40


def test_dead_actor_entries_stop_at_the_gcs_cache_bound():
    mix = Mix(sessions_per_org_per_day=4, destroyed_actor_cache=1000)
    assert gcs_dead_entries_mib(FIGURES, 10, mix) == pytest.approx(80 * 1024 / 2**20)  # 10 orgs * 4 * 2 actors
    assert gcs_dead_entries_mib(FIGURES, 10_000, mix) == pytest.approx(1000 * 1024 / 2**20)


def test_what_the_gcs_keeps_past_its_bounds_grows_with_the_days_wakes():
    mix = Mix(sessions_per_org_per_day=4)
    assert gcs_growth_mib_per_day(FIGURES, 1024, mix) == pytest.approx(1024 * 4 * 10 / 1024)  # 40 MiB a day


def test_nodes_for_is_the_fewest_that_hold_the_orgs():
    mix = Mix(sessions_per_org_per_day=4, live_s_per_session=720, peak_factor=3)
    needed = nodes_for(10_000, FIGURES, NODE, mix)
    assert min(orgs_in_all(FIGURES, NODE, needed, mix).values()) >= 10_000
    assert min(orgs_in_all(FIGURES, NODE, needed - 1, mix).values()) < 10_000
    assert needed == 25  # 400 orgs per node


def test_a_node_that_holds_no_org_is_a_clear_error():
    with pytest.raises(ValueError, match="holds no org"):
        nodes_for(10, FIGURES, Node(vcpus=1, memory_gib=1.0))


def test_figures_come_from_the_benchmarks_results(tmp_path: Path):
    (tmp_path / "org_capacity.json").write_text(
        json.dumps(
            {"measured": {"pss_mib_per_pair": 150.0, "idle_cpu_cores_per_pair": 0.002, "logical_cpus_per_pair": 0.1}}
        )
    )
    (tmp_path / "churn-quick.json").write_text(
        json.dumps(
            {
                "cpu_s_per_wake": 1.5,
                "gcs_bytes_per_actor_entry": 900.0,
                "gcs_bytes_per_wake_past_bounds": None,  # a run too short to reach the bound
                "disk_bytes_per_org": 4096,
            }
        )
    )
    (tmp_path / "burst.json").write_text(json.dumps({"cpu_s": 50.0, "links": 100}))
    figures, sources = figures_from_results(tmp_path)
    assert figures.cpu_s_per_link == 0.5
    assert figures.live.pss_mib == 150.0 and figures.cpu_s_per_wake == 1.5
    assert sources["churn"] == "churn-quick.json"
    assert figures.gcs_bytes_per_wake_past_bounds == 0.0
    (tmp_path / "churn.json").write_text(
        json.dumps(
            {
                "cpu_s_per_wake": 1.2,
                "gcs_bytes_per_actor_entry": 900.0,
                "gcs_bytes_per_wake_past_bounds": 30_000.0,
                "disk_bytes_per_org": 4096,
            }
        )
    )
    figures, sources = figures_from_results(tmp_path)
    assert sources["churn"] == "churn.json" and figures.cpu_s_per_wake == 1.2  # the full run wins over the quick one


def test_a_missing_benchmark_result_names_the_benchmark_to_run(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="org_capacity.json"):
        figures_from_results(tmp_path)
