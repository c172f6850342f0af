"""The Kubernetes manifests in k8s/ are valid KubeRay resources and say what the app needs.

The RayService is validated against the RayService CRD of KubeRay v1.7.0
(k8s/schema/, Apache-2.0), strictly: a field the CRD does not know fails here,
where `kubectl apply` would silently prune it. Beyond the schema, the tests
check the structure the app relies on: the GPU group, the resource only the
Summarizer asks for, and the data dir every pod mounts.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from linkproc_ray.adapters.front_door import HAPROXY_SWITCH
from linkproc_ray.adapters.local import GCS_CHURN_BOUNDS
from linkproc_ray.config import load_settings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"


@functools.cache
def rayservice_schema() -> dict[str, Any]:
    crd = yaml.safe_load((K8S / "schema" / "ray.io_rayservices.yaml").read_text("utf-8"))
    (v1,) = [version for version in crd["spec"]["versions"] if version["name"] == "v1"]
    return strict(v1["schema"]["openAPIV3Schema"])


def strict(schema: Any) -> Any:
    """The schema with unknown fields refused wherever it lists the fields (kubectl's --validate=strict)."""
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: strict(value) for key, value in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def problems(manifest: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(rayservice_schema())
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(manifest)]


def load(name: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((K8S / name).read_text("utf-8")) if doc]


def rayservice() -> dict[str, Any]:
    (manifest,) = load("rayservice.yaml")
    return manifest


def serve_config(manifest: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(manifest["spec"]["serveConfigV2"])
    return config


def groups(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    cluster = manifest["spec"]["rayClusterConfig"]
    found = {"head": cluster["headGroupSpec"]}
    found.update({group["groupName"]: group for group in cluster["workerGroupSpecs"]})
    return found


def containers(group: dict[str, Any]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = group["template"]["spec"]["containers"]
    return result


def env(container: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in container["env"]}


def test_the_rayservice_is_valid_against_kuberays_crd() -> None:
    assert problems(rayservice()) == []


def test_a_wrong_field_type_fails_validation() -> None:
    broken = rayservice()
    broken["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["maxReplicas"] = "ten"
    assert any(
        "workerGroupSpecs.0.maxReplicas" in p and "'ten' is not of type 'integer'" in p for p in problems(broken)
    )


def test_an_unknown_field_fails_validation_instead_of_being_pruned() -> None:
    broken = rayservice()
    broken["spec"]["rayClusterConfig"]["headGroupSpec"]["rayStartParam"] = {"num-cpus": "0"}
    assert any("rayStartParam" in p for p in problems(broken))


def test_serve_config_v2_is_serve_config_gpu_yaml_verbatim() -> None:
    spec = importlib.util.spec_from_file_location("k8s_render", K8S / "render.py")
    assert spec is not None and spec.loader is not None
    render = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(render)
    manifest = (K8S / "rayservice.yaml").read_text("utf-8")
    serve_config_file = (ROOT / "serve_config.gpu.yaml").read_text("utf-8")
    assert render.render(manifest, serve_config_file) == manifest, "run: python k8s/render.py --write"
    assert serve_config(rayservice()) == yaml.safe_load(serve_config_file)


def gpu_groups(manifest: dict[str, Any]) -> list[str]:
    """Groups whose pods get a GPU and offer the resources the Summarizer deployment asks for."""
    summarizer = next(d for d in serve_config(manifest)["applications"][0]["deployments"] if d["name"] == "Summarizer")
    wanted = summarizer["ray_actor_options"]["resources"]
    found = []
    for name, group in groups(manifest).items():
        limits = containers(group)[0]["resources"].get("limits", {})
        offers = group.get("resources", {})
        if int(limits.get("nvidia.com/gpu", 0)) >= summarizer["ray_actor_options"]["num_gpus"] and all(
            float(offers.get(resource, 0)) >= amount for resource, amount in wanted.items()
        ):
            found.append(name)
    return found


def test_only_the_gpu_group_gets_a_gpu_and_offers_what_the_summarizer_asks_for() -> None:
    manifest = rayservice()
    assert gpu_groups(manifest) == ["gpu-summarizer"]
    with_gpu = [
        name for name, g in groups(manifest).items() if containers(g)[0]["resources"]["limits"].get("nvidia.com/gpu")
    ]
    assert with_gpu == ["gpu-summarizer"]
    offering = [name for name, g in groups(manifest).items() if "summarizer_gpu" in g.get("resources", {})]
    assert offering == ["gpu-summarizer"]


def test_a_manifest_without_the_gpu_group_fails_the_structure_check() -> None:
    broken = copy.deepcopy(rayservice())
    workers = broken["spec"]["rayClusterConfig"]["workerGroupSpecs"]
    workers[:] = [group for group in workers if group["groupName"] != "gpu-summarizer"]
    assert problems(broken) == []  # still a valid RayService: only the structure check sees it
    assert gpu_groups(broken) == []


def test_the_head_runs_nothing_of_ours_and_the_cpu_workers_autoscale() -> None:
    manifest = rayservice()
    assert groups(manifest)["head"]["rayStartParams"]["num-cpus"] == "0"
    assert manifest["spec"]["rayClusterConfig"]["enableInTreeAutoscaling"] is True
    cpu = groups(manifest)["cpu-workers"]
    assert cpu["minReplicas"] < cpu["maxReplicas"]


def test_every_pod_mounts_the_shared_claim_at_the_data_dir_and_the_keys_where_settings_look() -> None:
    (claim,) = load("storage.yaml")
    assert claim["kind"] == "PersistentVolumeClaim" and claim["spec"]["accessModes"] == ["ReadWriteMany"]
    for name, group in groups(rayservice()).items():
        volumes = {v["name"]: v for v in group["template"]["spec"]["volumes"]}
        for container in containers(group):
            settings = load_settings(
                **{
                    k.removeprefix("LINKPROC_").lower(): v
                    for k, v in env(container).items()
                    if k.startswith("LINKPROC_")
                }
            )
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            data = volumes[mounts[str(settings.data_dir)]]
            assert data["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"], name
            keys = volumes[mounts[str(settings.jwt_public_keys_dir)]]
            assert keys["secret"]["secretName"] == "linkproc-jwt-keys", name


def test_the_gcs_is_bounded_against_churn_as_on_a_local_cluster() -> None:
    # Each hibernation leaves two dead actors in the GCS (benchmarks/churn.py).
    (head,) = containers(groups(rayservice())["head"])
    for name, value in GCS_CHURN_BOUNDS.items():
        assert env(head)[f"RAY_{name}"] == str(value), name


def test_every_pod_serves_its_http_port_with_haproxy_as_a_local_cluster_does() -> None:
    for name, group in groups(rayservice()).items():
        assert env(containers(group)[0])[HAPROXY_SWITCH] == "1", name


def test_workers_are_ready_only_when_the_app_answers_healthz() -> None:
    for name, group in groups(rayservice()).items():
        if name == "head":
            continue
        probe = containers(group)[0]["readinessProbe"]["httpGet"]
        assert (probe["path"], probe["port"]) == ("/healthz", 8000), name


def test_the_serve_service_points_at_the_serve_port() -> None:
    service = rayservice()["spec"]["serveService"]
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] == serve_config(rayservice())["http_options"]["port"]


@pytest.mark.parametrize("name", ["rayservice.yaml", "storage.yaml"])
def test_every_manifest_names_its_kind_and_version(name: str) -> None:
    for doc in load(name):
        assert doc["apiVersion"] and doc["kind"] and doc["metadata"]["name"]
