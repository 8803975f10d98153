#!/usr/bin/env bash
# Build the pinned control-plane binaries for the e2e tests into one folder.
#
#   e2e/cluster/build.sh [OUT_DIR]      (default: <repo>/.cache/cluster-bin)
#
# Every binary is an upstream main package named by a `tool` directive in
# e2e/cluster/go.mod, so they all share one module graph (one Kubernetes
# release) and one compilation of client-go, apimachinery and friends.
# Go's build cache makes a second run take seconds. Versions are read from
# go.mod, never repeated here, and stamped into the binaries the way the
# upstream release builds do, so `kubectl version` reports the real release.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here/../../.cache/cluster-bin}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
cd "$here"
# The Debian-style image keeps Go in /usr/local/go; a bare CI shell may not have it on PATH.
command -v go >/dev/null || PATH="/usr/local/go/bin:$PATH"

mod_field() { go list -m -f "{{.$2}}" "$1"; }

kube_version="$(mod_field k8s.io/kubernetes Version)"   # e.g. v1.36.3
# The release's commit time stands in for a build date: reproducible builds.
build_date="$(mod_field k8s.io/kubernetes 'Time.UTC.Format "2006-01-02T15:04:05Z"')"
helm_version="$(mod_field helm.sh/helm/v3 Version)"
kube_major="${kube_version#v}"; kube_major="${kube_major%%.*}"
kube_minor="${kube_version#v*.}"; kube_minor="${kube_minor%%.*}"

ldflags=(-s -w)
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=(
    -X "$pkg.gitVersion=$kube_version"
    -X "$pkg.gitMajor=$kube_major"
    -X "$pkg.gitMinor=$kube_minor"
    -X "$pkg.gitTreeState=clean"
    -X "$pkg.buildDate=$build_date"
  )
done
ldflags+=(
  -X "helm.sh/helm/v3/internal/version.version=$helm_version"
  -X "helm.sh/helm/v3/internal/version.gitTreeState=clean"
  -X "helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=$kube_major"
  -X "helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$kube_minor"
  -X "helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=$kube_major"
  -X "helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$kube_minor"
)

# Static binaries, like the upstream releases; cgo would only add C builds.
export CGO_ENABLED=0
# The binaries run on this machine: 2 cores, so at most 2 parallel compiles.
go build -p "${CLUSTER_BUILD_JOBS:-2}" -trimpath -ldflags "${ldflags[*]}" \
  -o "$out/" tool

# etcd's main package is go.etcd.io/etcd/server/v3, which Go names "server".
mv -f "$out/server" "$out/etcd"
echo "$kube_version" >"$out/KUBE_VERSION"
ls "$out"
