#!/usr/bin/env bash
# Build Jaeger v2, the trace backend the tracing e2e tests export to and query, into one folder.
#
#   e2e/jaeger/build.sh [OUT_DIR]      (default: <repo>/.cache/jaeger-bin)
#
# Jaeger v2 is the upstream main package github.com/jaegertracing/jaeger/cmd/jaeger (an
# OpenTelemetry Collector distribution), named by the `tool` directive in e2e/jaeger/go.mod.
# Jaeger tags each release twice on one commit (v1.x.y and v2.x.y) under a module path without
# /v2, so the Go module proxy serves only the v1 tag: v1.76.0 is the commit of v2.13.0.
# Go's build and module caches (shared with the other e2e builds) make a second run take seconds.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here/../../.cache/jaeger-bin}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
cd "$here"
# The Debian-style image keeps Go in /usr/local/go; a bare CI shell may not have it on PATH.
command -v go >/dev/null || PATH="/usr/local/go/bin:$PATH"

# A static binary without cgo; the tests run Jaeger on its in-memory storage.
export CGO_ENABLED=0
go build -p "${JAEGER_BUILD_JOBS:-2}" -trimpath -ldflags "-s -w" -o "$out/" tool
ls "$out"
