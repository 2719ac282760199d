# bento-mlops — one vocabulary for users and CI. `make` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
CONSTRAINTS := $(VENV)/lock-constraints.txt
LOCK_TOOL := $(PY) -m infrastructure.dependencies.lock_constraints
PYTEST_ARGS ?=
CONFIG ?= configs/iris.yaml
MODEL ?= iris-classifier
# Optional: a PyTorch wheel index for the torch step only (CI uses the CPU-only one).
TORCH_INDEX_URL ?=

.PHONY: help install format lint test clean checkgpu verify-lock

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

install: $(VENV)/.installed ## Create .venv and install the project with every package pinned by poetry.lock

$(VENV)/.installed: pyproject.toml poetry.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(LOCK_TOOL) poetry.lock -o $(CONSTRAINTS)
	$(PY) -m pip install --quiet --constraint $(CONSTRAINTS) "pip>=24" 2>/dev/null || true
	# torch first: pip takes a local CPU wheel where one is on disk, else PyPI's build.
	$(PY) -m pip install --quiet --constraint $(CONSTRAINTS) $(if $(TORCH_INDEX_URL),--index-url $(TORCH_INDEX_URL)) "torch==$$($(LOCK_TOOL) poetry.lock --version-of torch)"
	$(PY) -m pip install --quiet --constraint $(CONSTRAINTS) --editable ".[dev]"
	$(LOCK_TOOL) poetry.lock --verify
	@touch $@

verify-lock: ## Check that every installed locked package has its poetry.lock version
	$(LOCK_TOOL) poetry.lock --verify

format: install ## Format and auto-fix the code
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

lint: install ## ruff, mypy, import-linter contracts, poetry.lock consistency, actionlint
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/poetry check --lock
	$(BIN)/actionlint .github/workflows/*.yml

test: install ## Run the test suite (unit, integration, e2e; slow tests use tiny configs)
	CI=$${CI:-} $(BIN)/pytest $(PYTEST_ARGS)

checkgpu: install ## Show whether torch sees a GPU here
	$(PY) -c "import torch; print('torch', torch.__version__); print('cuda available:', torch.cuda.is_available()); print('devices:', [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())])"

clean: ## Remove caches and local state (.mlops); keeps .venv
	rm -rf .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov .mlops mlruns monitoring
	find . -name __pycache__ -not -path "./$(VENV)/*" -prune -exec rm -rf {} +
