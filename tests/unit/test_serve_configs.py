"""The shipped Serve configs validate against Serve's own schema and build the intended summarizer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from ray.serve.schema import ServeDeploySchema

from linkproc_ray.adapters.serve import INGRESS_MAX_ONGOING_REQUESTS, MODEL_SUMMARIZERS
from linkproc_ray.config import load_settings
from linkproc_ray.errors import ConfigError
from linkproc_ray.summarize.extractive import ExtractiveSummarizer
from linkproc_ray.summarize.factory import make_summarizer
from linkproc_ray.summarize.openai import OpenAISummarizer
from linkproc_ray.summarize.vllm import VLLMSummarizer

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ["serve_config.yaml", "serve_config.gpu.yaml"]


def _load(name: str) -> ServeDeploySchema:
    return ServeDeploySchema.model_validate(yaml.safe_load((ROOT / name).read_text()))


def _deployments(schema: ServeDeploySchema) -> dict[str, Any]:
    (app,) = schema.applications
    return {d.name: d for d in app.deployments}


@pytest.mark.parametrize("name", CONFIGS)
def test_config_is_a_valid_serve_deploy_schema(name: str) -> None:
    schema = _load(name)
    (app,) = schema.applications
    assert app.import_path == "linkproc_ray.adapters.serve:build_app"
    deployments = _deployments(schema)
    assert deployments["Ingress"].max_ongoing_requests == INGRESS_MAX_ONGOING_REQUESTS
    assert app.logging_config.enable_access_log is False


@pytest.mark.parametrize("name", CONFIGS)
def test_config_args_are_valid_settings(name: str) -> None:
    (app,) = _load(name).applications
    load_settings(**app.args)


def test_only_the_gpu_config_asks_for_a_gpu() -> None:
    local = _deployments(_load("serve_config.yaml"))
    gpu = _deployments(_load("serve_config.gpu.yaml"))["Summarizer"]
    assert not any(getattr(d.ray_actor_options, "num_gpus", None) for d in local.values())
    assert gpu.ray_actor_options.num_gpus == 1
    assert gpu.autoscaling_config["min_replicas"] >= 1


def test_each_config_lists_exactly_the_deployments_its_app_builds() -> None:
    # Serve refuses a config naming a deployment the app does not have: the
    # extractive app has no Summarizer (it runs in batch tasks), a model's app has one.
    for name in CONFIGS:
        (app,) = _load(name).applications
        settings = load_settings(**app.args)
        expected = {"Ingress"} | ({"Summarizer"} if settings.summarizer in MODEL_SUMMARIZERS else set())
        assert set(_deployments(_load(name))) == expected


def test_local_config_serves_the_extractive_summarizer() -> None:
    (app,) = _load("serve_config.yaml").applications
    assert isinstance(make_summarizer(load_settings(**app.args)), ExtractiveSummarizer)


def test_gpu_config_serves_a_hub_instruct_model_with_vllm_unstarted() -> None:
    (app,) = _load("serve_config.gpu.yaml").applications
    summarizer = make_summarizer(load_settings(**app.args))
    assert isinstance(summarizer, VLLMSummarizer)
    assert summarizer.model == "Qwen/Qwen2.5-1.5B-Instruct"
    assert summarizer.options.tensor_parallel_size == 1


def test_openai_summarizer_takes_endpoint_model_and_key_from_settings() -> None:
    settings = load_settings(
        summarizer="openai", openai_base_url="http://127.0.0.1:9/v1", openai_model="m", openai_api_key="k"
    )
    summarizer = make_summarizer(settings)
    assert isinstance(summarizer, OpenAISummarizer)
    assert summarizer.url == "http://127.0.0.1:9/v1/chat/completions"
    assert summarizer.model == "m"


@pytest.mark.parametrize(
    "overrides",
    [{"summarizer": "vllm"}, {"summarizer": "openai", "openai_model": "m"}],
    ids=["vllm-without-model", "openai-without-url"],
)
def test_a_model_summarizer_without_its_model_or_endpoint_is_a_config_error(overrides: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="LINKPROC_"):
        make_summarizer(load_settings(**overrides))
