#!/usr/bin/env bash
# Build Dex, the OpenID Connect provider the e2e tests get tokens from, into one folder.
#
#   e2e/oidc/build.sh [OUT_DIR]      (default: <repo>/.cache/oidc-bin)
#
# Dex is the upstream main package github.com/dexidp/dex/cmd/dex, named by the
# `tool` directive in e2e/oidc/go.mod; that module pins the release (v2.45.1's
# commit: Dex tags v2 releases without a /v2 module path, so Go knows them by
# pseudo-version only). The version is read from go.mod and stamped into the
# binary the way Dex's Makefile does, so `dex version` names the pinned commit.
# Go's build cache (shared with e2e/cluster/build.sh) makes a second run take
# seconds.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here/../../.cache/oidc-bin}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
cd "$here"
# The Debian-style image keeps Go in /usr/local/go; a bare CI shell may not have it on PATH.
command -v go >/dev/null || PATH="/usr/local/go/bin:$PATH"

dex_version="$(go list -m -f '{{.Version}}' github.com/dexidp/dex)"

# A static binary without cgo: Dex then has no SQLite storage, which the tests
# do not use (they run Dex on its in-memory storage).
export CGO_ENABLED=0
go build -p "${OIDC_BUILD_JOBS:-2}" -trimpath \
  -ldflags "-s -w -X main.version=$dex_version" \
  -o "$out/" tool
ls "$out"
