# bento-mlops — one vocabulary for users and CI. `make` lists the targets.
SHELL := /bin/bash
comma := ,
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
CONSTRAINTS := $(VENV)/lock-constraints.txt
LOCK_TOOL := $(PY) -m infrastructure.dependencies.lock_constraints
# The extras `make install` installs; their packages are pinned by the lock like the rest.
EXTRAS := dev
# pip is not in the lock (it installs the lock), so it is pinned here: nothing in the install
# may depend on which versions the index serves today.
PIP_VERSION := 26.3
PYTEST_ARGS ?=
CONFIG ?= configs/iris.yaml
MODEL ?= iris-classifier
# Optional: a PyTorch wheel index for the torch step only (CI uses the CPU-only one).
TORCH_INDEX_URL ?=
HOST ?= 127.0.0.1
PORT ?= 3000
# Same defaults as MlopsSettings: every target uses the project-local store unless told.
MLOPS_HOME ?= $(CURDIR)/.mlops
MLOPS_BENTOML_HOME ?= $(MLOPS_HOME)/bentoml
export MLOPS_HOME MLOPS_BENTOML_HOME
# bentoml's own CLI reads BENTOML_HOME before our code runs.
export BENTOML_HOME := $(MLOPS_BENTOML_HOME)
TABULAR_SERVICE := infrastructure.serving.entrypoints.tabular:TabularClassifier
TEXT_SERVICE := infrastructure.serving.entrypoints.text:TextClassifier
TEXT_MODEL ?= sst2-sentiment
TEXT_CONFIG ?= configs/sst2_quick.yaml
TEXT_PORT ?= 3001
# The edge (HAProxy, deploy/haproxy/haproxy.cfg) takes HOST:PORT and refuses excess load with
# a fast 429 before it reaches Python; each service then listens on 127.0.0.1 at
# PORT + EDGE_OFFSET. EDGE=off, or no haproxy installed, serves directly on HOST:PORT.
HAPROXY ?= $(firstword $(shell command -v haproxy 2>/dev/null) $(wildcard /usr/sbin/haproxy))
EDGE ?= $(if $(HAPROXY),on,off)
EDGE_OFFSET ?= 100
# In flight in the service (its workers x max_batch_size) and waiting at the edge: sized so
# that (in flight + waiting) / capacity is about 3/4 of MAX_LATENCY_MS (1 s): tabular ~600
# rps a worker, text ~240 on this project's 2-core machine. A shorter queue refuses what
# the service would have answered in time (a 10-minute soak at 80% shed 0.13% with 128).
EDGE_MAX_CONN ?= 64
EDGE_QUEUE_TABULAR ?= 384
EDGE_QUEUE_TEXT ?= 128
LOAD_USERS ?= 32
LOAD_TIME ?= 30s

.PHONY: help install system-deps monitor-local monitor-up monitor-down overload chaos soak format lint test clean checkgpu verify-lock train validate promote rollback canary models demo champion text-champion build build-text serve serve-tabular serve-text bench bench-tabular bench-text bench-overhead bench-score gpu-kit load load-text k8s-validate system-deps-containers base-image containerize containerize-text container-test

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

install: $(VENV)/.installed ## Create .venv and install the project with every package pinned by poetry.lock

$(VENV)/.installed: pyproject.toml poetry.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(LOCK_TOOL) poetry.lock $(addprefix --extra ,$(EXTRAS)) -o $(CONSTRAINTS)
	$(PY) -m pip install --quiet "pip==$(PIP_VERSION)"
	# torch first: pip takes a local CPU wheel where one is on disk, else PyPI's build.
	$(PY) -m pip install --quiet --constraint $(CONSTRAINTS) $(if $(TORCH_INDEX_URL),--index-url $(TORCH_INDEX_URL)) "torch==$$($(LOCK_TOOL) poetry.lock --version-of torch)"
	# The build backend from the lock too: an isolated build env would take the newest one.
	$(PY) -m pip install --quiet --constraint $(CONSTRAINTS) poetry-core setuptools
	$(PY) -m pip install --quiet --constraint $(CONSTRAINTS) --no-build-isolation --editable ".[$(subst $(eval) ,$(comma),$(EXTRAS))]"
	$(LOCK_TOOL) poetry.lock $(addprefix --extra ,$(EXTRAS)) --verify
	@touch $@

# Debian packages some tests and targets run for real: promtool and prometheus (rules,
# monitor-local), amtool, redis-server (the Redis prediction log), docker-compose (validates
# docker-compose.yml without a daemon), chromium + chromium-driver (the web UI's browser
# test). As root, or through sudo.
SYSTEM_PACKAGES := prometheus prometheus-alertmanager redis-server docker-compose chromium chromium-driver haproxy nghttp2-client
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

system-deps: ## Install the Debian packages the tests need (prometheus, alertmanager, redis-server, docker-compose, chromium, haproxy, h2load)
	@missing=""; for tool in promtool amtool redis-server docker-compose chromium chromedriver h2load; do command -v $$tool >/dev/null || missing=1; done; \
	test -x /usr/sbin/haproxy || command -v haproxy >/dev/null || missing=1; \
	if [ -n "$$missing" ]; then \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(SYSTEM_PACKAGES); \
	else echo "system packages present: $(SYSTEM_PACKAGES)"; fi

# The container tools (make containerize, container-test, base-image): podman + buildah with
# runc, and mmdebstrap for the offline base image.
CONTAINER_PACKAGES := podman buildah runc mmdebstrap uidmap

system-deps-containers: ## Install podman, buildah, runc and mmdebstrap (Debian packages) for the image targets
	@if ! command -v podman >/dev/null || ! command -v mmdebstrap >/dev/null; then \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(CONTAINER_PACKAGES); \
	else echo "container tools present: $(CONTAINER_PACKAGES)"; fi

verify-lock: ## Check that every installed package is pinned by poetry.lock at its locked version
	$(LOCK_TOOL) poetry.lock $(addprefix --extra ,$(EXTRAS)) --verify

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

train: install ## Train CONFIG (default configs/iris.yaml); best model becomes `challenger`
	$(BIN)/mlops train $(CONFIG)

validate: install ## Gate MODEL's challenger on its held-out split (exit 1 below threshold)
	$(BIN)/mlops validate $(MODEL) --alias challenger

promote: install ## Promote MODEL's challenger to champion if it passes the gate
	$(BIN)/mlops promote $(MODEL)

rollback: install ## Return MODEL's champion to the previous champion
	$(BIN)/mlops rollback $(MODEL)

canary: install ## Canary MODEL's challenger on the service at HOST:PORT (configs/canary.yaml); promote or roll back
	$(BIN)/mlops canary $(MODEL) --url http://$(HOST):$(PORT) --config configs/canary.yaml

models: install ## List MODEL's versions, metrics, aliases and BentoML tags
	$(BIN)/mlops models $(MODEL)

champion: install ## Train, gate and promote MODEL (CONFIG) unless it already has a champion
	@if $(BIN)/mlops models $(MODEL) 2>/dev/null | grep -q champion; then \
		echo "$(MODEL) already has a champion:"; $(BIN)/mlops models $(MODEL); \
	else \
		$(BIN)/mlops train $(CONFIG) && $(BIN)/mlops validate $(MODEL) --alias challenger && \
		$(BIN)/mlops promote $(MODEL) && $(BIN)/mlops models $(MODEL); \
	fi

text-champion: install ## Fine-tune TEXT_CONFIG (quick SST-2 recipe, ~2 min CPU) and promote TEXT_MODEL unless it has a champion
	@$(MAKE) --no-print-directory champion MODEL=$(TEXT_MODEL) CONFIG=$(TEXT_CONFIG)

build: install ## bentoml build: a Bento of the tabular service with MODEL's champion
	MLOPS_SERVE_MODEL_NAME=$(MODEL) $(BIN)/bentoml build -f bentofile.yaml

build-text: install ## bentoml build: a Bento of the text service with TEXT_MODEL's champion
	MLOPS_TEXT_SERVE_MODEL_NAME=$(TEXT_MODEL) $(BIN)/bentoml build -f bentofile.text.yaml

# Where a service listens for public port $(1), and the edge in front of it, queueing up to
# $(2) requests (its own counters, Prometheus format, on 127.0.0.1:$(1)+5404/metrics).
edge_on := $(filter on,$(EDGE))
service_bind = $(if $(edge_on),--host 127.0.0.1 --port $$(( $(1) + $(EDGE_OFFSET) )),--host $(HOST) --port $(1))
edge_for = $(if $(edge_on),EDGE_BIND=$(HOST):$(1) SERVICE_ADDR=127.0.0.1:$$(( $(1) + $(EDGE_OFFSET) )) EDGE_METRICS_BIND=127.0.0.1:$$(( $(1) + 5404 )) EDGE_MAX_CONN=$(EDGE_MAX_CONN) EDGE_QUEUE=$(2) $(HAPROXY) -db -f deploy/haproxy/haproxy.cfg &)
edge_note = $(if $(edge_on),through the edge (HAProxy; EDGE=off serves directly),directly (no haproxy: `make system-deps` installs it))

# Two servers, one per Bento (and an edge in front of each): Ctrl-C (or any one exiting)
# stops all. TERM, not INT: background jobs of a non-interactive shell ignore SIGINT.
serve: install ## Serve both champions: MODEL on HOST:PORT (3000), TEXT_MODEL on HOST:TEXT_PORT (3001), web UI at /ui, behind the edge when haproxy is installed
	@echo "web UI: http://$(HOST):$(PORT)/ui (tabular) and http://$(HOST):$(TEXT_PORT)/ui (text), $(edge_note), once they say ready"
	@trap 'kill -TERM $$(jobs -p) 2>/dev/null; wait' EXIT; trap 'exit 130' INT TERM; \
	MLOPS_SERVE_MODEL_NAME=$(MODEL) $(BIN)/mlops serve $(TABULAR_SERVICE) $(call service_bind,$(PORT)) & \
	MLOPS_TEXT_SERVE_MODEL_NAME=$(TEXT_MODEL) $(BIN)/mlops serve $(TEXT_SERVICE) $(call service_bind,$(TEXT_PORT)) & \
	$(call edge_for,$(PORT),$(EDGE_QUEUE_TABULAR)) $(call edge_for,$(TEXT_PORT),$(EDGE_QUEUE_TEXT)) \
	wait -n

serve-tabular: install ## Serve MODEL's champion only, on HOST:PORT (behind the edge as `serve`)
	@echo "tabular service on http://$(HOST):$(PORT), $(edge_note)"
	@trap 'kill -TERM $$(jobs -p) 2>/dev/null; wait' EXIT; trap 'exit 130' INT TERM; \
	MLOPS_SERVE_MODEL_NAME=$(MODEL) $(BIN)/mlops serve $(TABULAR_SERVICE) $(call service_bind,$(PORT)) & \
	$(call edge_for,$(PORT),$(EDGE_QUEUE_TABULAR)) wait -n

serve-text: install ## Serve TEXT_MODEL's champion only, on HOST:TEXT_PORT (behind the edge as `serve`)
	@echo "text service on http://$(HOST):$(TEXT_PORT), $(edge_note)"
	@trap 'kill -TERM $$(jobs -p) 2>/dev/null; wait' EXIT; trap 'exit 130' INT TERM; \
	MLOPS_TEXT_SERVE_MODEL_NAME=$(TEXT_MODEL) $(BIN)/mlops serve $(TEXT_SERVICE) $(call service_bind,$(TEXT_PORT)) & \
	$(call edge_for,$(TEXT_PORT),$(EDGE_QUEUE_TEXT)) wait -n

demo: champion text-champion serve ## Train and promote iris and SST-2 models if they have no champion, serve both (web UI at /ui)

bench: bench-tabular bench-text ## Run the serving benchmarks (writes benchmarks/results/*.json)

bench-tabular: install ## Bento service vs `mlflow models serve` vs plain FastAPI, 1/8/32/64 clients
	$(PY) -m benchmarks.tabular_serving

bench-text: install ## Text service vs its raw model, an unbatched server, batching off, cache on
	$(PY) -m benchmarks.text_serving

bench-overhead: install ## Serving cost per request without a GPU: zero-cost and synthetic-GPU models vs bare uvicorn, one run per knob
	$(PY) -m benchmarks.serving_overhead

gpu-kit: install ## .gpu/: wheels (Python 3.12) + the text champion in fp16, for benchmarks/gpu_check.sh on a lent GPU machine
	$(PY) -m benchmarks.gpu_kit build

bench-score: install ## mlops score vs the model alone: 500k tabular rows (CSV, Parquet; logistic regression, 300-tree forest), 4k sentences
	$(PY) -m benchmarks.batch_scoring

load: install ## Locust, headless and bounded (LOAD_USERS, LOAD_TIME), against HOST:PORT
	$(BIN)/locust -f benchmarks/locustfile.py --headless -u $(LOAD_USERS) -r $(LOAD_USERS) -t $(LOAD_TIME) --host http://$(HOST):$(PORT) --only-summary

load-text: install ## Locust with SST-2 sentences against the text service on HOST:TEXT_PORT
	$(BIN)/locust -f benchmarks/locustfile_text.py --headless -u $(LOAD_USERS) -r $(LOAD_USERS) -t $(LOAD_TIME) --host http://$(HOST):$(TEXT_PORT) --only-summary

clean: ## Remove caches and local state (.mlops); keeps .venv
	rm -rf .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov .mlops mlruns monitoring
	find . -name __pycache__ -not -path "./$(VENV)/*" -prune -exec rm -rf {} +

PROMETHEUS_PORT ?= 9090

monitor-local: ## Prometheus (Debian package) on 127.0.0.1:$(PROMETHEUS_PORT) scraping `make demo`'s services, with the alert rules
	@command -v prometheus >/dev/null || { echo "prometheus is not installed: make system-deps"; exit 1; }
	prometheus --config.file=deploy/prometheus/prometheus.local.yml \
	  --storage.tsdb.path=$(MLOPS_HOME)/prometheus \
	  --web.listen-address=127.0.0.1:$(PROMETHEUS_PORT)

# docker compose (plugin), else docker-compose, else podman-compose.
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || (command -v docker-compose >/dev/null && echo docker-compose) || echo podman-compose)

# podman reads this (runc, lower default ulimits); export your own CONTAINERS_CONF to override.
export CONTAINERS_CONF ?= $(CURDIR)/deploy/podman/containers.conf
VARIANT ?= cpu
CONTAINER_TEST_ARGS ?=

base-image: ## Build the offline stand-in for the Bento base image (python:3.11-slim) with mmdebstrap and the host's CA certificates
	deploy/podman/base-image.sh

containerize: install ## Image of the tabular service with MODEL's champion (podman), tagged bento-mlops-tabular:v<model version>
	$(PY) -m infrastructure.deploy.images tabular --model $(MODEL)

containerize-text: install ## Image of the text service with TEXT_MODEL's champion; VARIANT=cpu (CPU-only torch) or cuda
	$(PY) -m infrastructure.deploy.images text --model $(TEXT_MODEL) --variant $(VARIANT)

container-test: install ## Build the tabular image, run it read-only as in deploy/k8s, check readyz, a prediction, a 400, /metrics, /ui; JSON in benchmarks/results
	$(PY) -m infrastructure.deploy.container_test $(CONTAINER_TEST_ARGS)

k8s-validate: install ## Render every deploy/k8s overlay (kubectl kustomize), validate it strictly against the Kubernetes API schemas and the project's policy
	$(PY) -m infrastructure.deploy.k8s_checks

monitor-up: ## Services + Redis + Prometheus + Alertmanager + Grafana (:3002) from docker-compose.yml
	$(COMPOSE) up -d

monitor-down: ## Stop the monitoring stack (volumes kept)
	$(COMPOSE) down

# RELIABILITY_ARGS: e.g. "--kind text --topology split --victim runner", "--split-cores"
overload: install ## 3x the measured capacity, then half: 429 + Retry-After, accepted p99, recovery (about 1 minute)
	$(PY) -m benchmarks.reliability overload $(RELIABILITY_ARGS)

chaos: install ## kill -9 of a worker (or the text runner) under steady load: failed share, time to a new one, no log record lost
	$(PY) -m benchmarks.reliability chaos $(RELIABILITY_ARGS)

soak: install ## 10 minutes at 80% of capacity: errors, RSS growth, first vs last minute latency
	$(PY) -m benchmarks.reliability soak $(RELIABILITY_ARGS)
