"""Every cluster launcher YAML in ``cluster/`` is valid for the installed Ray and places work as intended.

The schema is the one shipped inside the ``ray`` package, so a Ray upgrade
that changes the format fails here, not at ``ray up``.
"""

from __future__ import annotations

import json
import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import ray
import yaml

from linkproc_ray.adapters.front_door import HAPROXY_SWITCH
from linkproc_ray.adapters.local import GCS_CHURN_BOUNDS

ROOT = Path(__file__).resolve().parents[2]
CLUSTER_CONFIGS = sorted((ROOT / "cluster").glob("*.yaml"))
SUMMARIZER_RESOURCE = "summarizer_gpu"
DATA_DIR = "/mnt/linkproc"


def load(path: Path) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(path.read_text())
    return config


def ray_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((resources.files("ray.autoscaler") / "ray-schema.json").read_text())
    return schema


def node_types(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    types: dict[str, dict[str, Any]] = config["available_node_types"]
    return types


def worker_types(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: spec for name, spec in node_types(config).items() if name != config["head_node_type"]}


def gpu_types(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: spec for name, spec in node_types(config).items() if spec["resources"].get("GPU", 0) > 0}


def all_setup_commands(config: dict[str, Any]) -> list[str]:
    commands = list(config.get("setup_commands", []))
    for spec in node_types(config).values():
        commands.extend(spec.get("worker_setup_commands", []))
    return commands


def test_there_is_a_config_for_aws_and_one_for_gcp():
    assert {path.stem for path in CLUSTER_CONFIGS} >= {"aws", "gcp"}


@pytest.mark.parametrize("path", CLUSTER_CONFIGS, ids=lambda p: p.name)
def test_config_validates_against_the_schema_shipped_with_ray(path):
    jsonschema.Draft7Validator(ray_schema()).validate(load(path))


@pytest.mark.parametrize("path", CLUSTER_CONFIGS, ids=lambda p: p.name)
def test_config_passes_the_checks_ray_up_runs_before_contacting_the_cloud(path):
    # `ray up` fills in the provider's defaults, then validates; both are private Ray API.
    from ray.autoscaler._private.util import prepare_config, validate_config

    validate_config(prepare_config(load(path)))


def test_the_schema_rejects_a_misspelled_key():
    config = load(ROOT / "cluster" / "aws.yaml")
    config["worker_start_commands"] = config.pop("worker_start_ray_commands")
    with pytest.raises(jsonschema.ValidationError, match="worker_start_commands"):
        jsonschema.Draft7Validator(ray_schema()).validate(config)


@pytest.mark.parametrize("path", CLUSTER_CONFIGS, ids=lambda p: p.name)
def test_head_takes_no_work_and_groups_fit_max_workers(path):
    config = load(path)
    assert node_types(config)[config["head_node_type"]]["resources"] == {"CPU": 0}
    assert sum(spec["max_workers"] for spec in worker_types(config).values()) <= config["max_workers"]


@pytest.mark.parametrize("path", CLUSTER_CONFIGS, ids=lambda p: p.name)
def test_only_the_gpu_group_carries_gpus_and_the_summarizer_resource(path):
    config = load(path)
    (gpu,) = gpu_types(config).values()
    assert gpu["resources"][SUMMARIZER_RESOURCE] == gpu["resources"]["GPU"] == 1
    assert gpu["labels"] == {"linkproc-pool": "summarizer"}
    for name, spec in worker_types(config).items():
        if spec is not gpu:
            assert "GPU" not in spec["resources"] and SUMMARIZER_RESOURCE not in spec["resources"], name
            assert spec["labels"] == {"linkproc-pool": "orgs"}, name


@pytest.mark.parametrize("path", CLUSTER_CONFIGS, ids=lambda p: p.name)
def test_cpu_group_autoscales_and_survives_one_node_loss(path):
    config = load(path)
    cpu_groups = [spec for spec in worker_types(config).values() if "GPU" not in spec["resources"]]
    assert cpu_groups
    for spec in cpu_groups:
        assert spec["min_workers"] >= 2 and spec["max_workers"] > spec["min_workers"]


@pytest.mark.parametrize("path", CLUSTER_CONFIGS, ids=lambda p: p.name)
def test_every_node_installs_the_wheel_of_this_version(path):
    config = load(path)
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    wheel = f"/home/ray/linkproc-dist/linkproc_ray-{version}-py3-none-any.whl"
    assert config["file_mounts"]["/home/ray/linkproc-dist"] == "./dist"
    assert config["setup_commands"]
    for command in all_setup_commands(config):
        assert wheel in command


@pytest.mark.parametrize("path", CLUSTER_CONFIGS, ids=lambda p: p.name)
def test_images_carry_the_installed_ray_version(path):
    config = load(path)
    images = [config["docker"]["image"]]
    images += [spec["docker"]["worker_image"] for spec in node_types(config).values() if "docker" in spec]
    for image in images:
        assert image.startswith(f"rayproject/ray:{ray.__version__}-"), image


@pytest.mark.parametrize("path", CLUSTER_CONFIGS, ids=lambda p: p.name)
def test_every_node_starts_ray_with_the_shared_data_dir_mounted(path):
    config = load(path)
    assert f"--volume {DATA_DIR}:{DATA_DIR}" in config["docker"]["run_options"]
    assert any(re.search(rf"mount -t nfs4? .* {DATA_DIR}$", c) for c in config["initialization_commands"])
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        (start,) = [c for c in config[key] if "ray start" in c]
        assert f"LINKPROC_DATA_DIR={DATA_DIR}" in start
        assert "RAY_AUTH_MODE=token" in start


@pytest.mark.parametrize("path", CLUSTER_CONFIGS, ids=lambda p: p.name)
def test_every_node_serves_its_http_port_with_haproxy_as_a_local_cluster_does(path):
    # Ray reads the switch in each process it starts: the controller on the head, HAProxy and replicas on workers.
    config = load(path)
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        (start,) = [c for c in config[key] if "ray start" in c]
        assert f"{HAPROXY_SWITCH}=1" in start.replace(";", " ").split(), key


@pytest.mark.parametrize("path", CLUSTER_CONFIGS, ids=lambda p: p.name)
def test_the_heads_gcs_is_bounded_against_churn_as_on_a_local_cluster(path):
    # The GCS runs on the head; each hibernation leaves two dead actors in it.
    (start,) = [c for c in load(path)["head_start_ray_commands"] if "ray start" in c]
    exported = dict(word.split("=", 1) for word in start.replace(";", " ").split() if word.startswith("RAY_"))
    for name, value in GCS_CHURN_BOUNDS.items():
        assert exported[f"RAY_{name}"] == str(value), name


def test_the_gpu_serve_config_asks_for_the_resource_only_gpu_nodes_have():
    serve_config = yaml.safe_load((ROOT / "serve_config.gpu.yaml").read_text())
    (app,) = serve_config["applications"]
    deployments = {d["name"]: d for d in app["deployments"]}
    summarizer = deployments["Summarizer"]["ray_actor_options"]
    assert summarizer["resources"] == {SUMMARIZER_RESOURCE: 1}
    assert summarizer["num_gpus"] == 1
    assert "resources" not in deployments["Ingress"].get("ray_actor_options", {})
