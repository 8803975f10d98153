# e2e on a real, local Kubernetes control plane. Included by the top-level Makefile.
# See docs/testing.md.
PY ?= .venv/bin/python
PYTEST ?= .venv/bin/pytest
CLUSTER_BIN ?= .cache/cluster-bin
# The control plane runs on 2 cores: at most 2 packages compile at once.
CLUSTER_BUILD_JOBS ?= 2
OIDC_BIN ?= .cache/oidc-bin
JAEGER_BIN ?= .cache/jaeger-bin

KSTATUS_BIN ?= .cache/kstatus-bin
HELM4_BIN ?= .cache/helm4-bin

.PHONY: cluster-bin oidc-bin kstatus-bin helm4-bin jaeger-bin e2e

# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, KWOK and Helm,
# pinned in e2e/cluster/go.mod. Cold: 10-20 min on 2 cores (15 CPU-minutes); warm: ~5 s.
cluster-bin: ## Build the pinned control-plane binaries into .cache/cluster-bin
	CLUSTER_BUILD_JOBS=$(CLUSTER_BUILD_JOBS) e2e/cluster/build.sh $(CLUSTER_BIN)

# Dex, the OpenID Connect provider the identity tests get tokens from, pinned in e2e/oidc/go.mod.
# It shares Go's build cache with cluster-bin. Cold: ~3 min on 2 cores (2.3 CPU-minutes, downloads
# included), 1.3 CPU-minutes beside a cluster-bin build; warm: ~1 s.
oidc-bin: ## Build the pinned OIDC provider (Dex) into .cache/oidc-bin
	OIDC_BUILD_JOBS=$(CLUSTER_BUILD_JOBS) e2e/oidc/build.sh $(OIDC_BIN)

# kstatus (sigs.k8s.io/cli-utils, pinned in e2e/kstatus/go.mod): how Flux and Helm 4's --wait read
# health, run on live InferenceModels by e2e/test_operator.py. Shares Go's build cache; cold ~30 s.
kstatus-bin: ## Build the kstatus checker into .cache/kstatus-bin
	cd e2e/kstatus && PATH="$$PATH:/usr/local/go/bin" CGO_ENABLED=0 \
	  go build -p $(CLUSTER_BUILD_JOBS) -trimpath -ldflags "-s -w" -o $(abspath $(KSTATUS_BIN))/kstatus .

# Helm 4 (pinned in e2e/helm4/go.mod), whose --wait reads custom resources' health with kstatus.
# Shares Go's build cache; cold ~2.5 min on 2 cores, warm ~1 s.
helm4-bin: ## Build Helm 4 into .cache/helm4-bin
	cd e2e/helm4 && PATH="$$PATH:/usr/local/go/bin" CGO_ENABLED=0 \
	  go build -p $(CLUSTER_BUILD_JOBS) -trimpath -ldflags "-s -w" -o $(abspath $(HELM4_BIN))/ tool

# Jaeger v2 (github.com/jaegertracing/jaeger/cmd/jaeger, pinned in e2e/jaeger/go.mod), the trace
# backend e2e/test_traces.py exports to and queries. Shares Go's build and module caches.
# Cold: 10 CPU-minutes, peak 2.3 GB RSS (measured: 33 min wall, niced on a loaded shared machine;
# estimated from the CPU time: 6-8 min on 2 idle cores, plus ~1.5 min of module downloads);
# warm: ~5 s (measured).
jaeger-bin: ## Build Jaeger v2 into .cache/jaeger-bin
	JAEGER_BUILD_JOBS=$(CLUSTER_BUILD_JOBS) e2e/jaeger/build.sh $(JAEGER_BIN)

e2e: cluster-bin oidc-bin kstatus-bin helm4-bin jaeger-bin ## e2e tests on a local control plane (etcd, apiserver, controllers, scheduler, KWOK)
	$(PYTEST) e2e
