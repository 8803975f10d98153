# e2e on a real, local Kubernetes control plane. Included by the top-level Makefile.
# See docs/testing.md.
PY ?= .venv/bin/python
PYTEST ?= .venv/bin/pytest
CLUSTER_BIN ?= .cache/cluster-bin
# The control plane runs on 2 cores: at most 2 packages compile at once.
CLUSTER_BUILD_JOBS ?= 2

.PHONY: cluster-bin e2e

# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, KWOK and Helm,
# pinned in e2e/cluster/go.mod. Cold: 10-20 min on 2 cores (15 CPU-minutes); warm: ~5 s.
cluster-bin: ## Build the pinned control-plane binaries into .cache/cluster-bin
	CLUSTER_BUILD_JOBS=$(CLUSTER_BUILD_JOBS) e2e/cluster/build.sh $(CLUSTER_BIN)

e2e: cluster-bin ## e2e tests on a local control plane (etcd, apiserver, controllers, scheduler, KWOK)
	$(PYTEST) e2e
