"""A real trace backend for the e2e tests: Jaeger v2, run as a local process on loopback.

Jaeger v2 is an OpenTelemetry Collector distribution. This module runs the binary ``make
jaeger-bin`` builds from its Go module (pinned in ``e2e/jaeger/go.mod``) with a configuration of
its own, the way ``oidc_fixture.py`` runs Dex:

- an OTLP/HTTP receiver (what InferFlux exports to) on a free loopback port;
- the in-memory trace store (nothing on disk but the config and the log, in one temporary folder);
- the query service's HTTP API (``/api/traces/<trace id>``) on another free port;
- the v2 health check, polled until every component reports ready.

The process gets its own session, ``PR_SET_PDEATHSIG`` and an ``atexit`` hook (through
`cluster_fixture.Component`). The pytest fixture ``jaeger`` (session scope, started on first use)
is registered by ``e2e/conftest.py``.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cluster_fixture import KEEP_ENV, REPO, Component, free_port
from oidc_fixture import stop_process

#: Where ``make jaeger-bin`` puts Jaeger; ``INFERFLUX_E2E_JAEGER_BIN_DIR`` points elsewhere.
DEFAULT_BIN_DIR = Path(os.environ.get("INFERFLUX_E2E_JAEGER_BIN_DIR") or REPO / ".cache" / "jaeger-bin")


class JaegerError(RuntimeError):
    """Jaeger is missing or failed to start (the message says which, with its last log lines)."""


def find_jaeger(bin_dir: Path = DEFAULT_BIN_DIR) -> Path:
    """The Jaeger binary, or one error naming the fix."""
    path = bin_dir / "jaeger"
    if not os.access(path, os.X_OK):
        raise JaegerError(
            f"missing the trace backend binary {path}. "
            "Run `make jaeger-bin` (Jaeger v2 from its Go module: minutes cold, seconds when warm)."
        )
    return path


class Jaeger:
    """Jaeger v2 on free loopback ports with in-memory storage; :meth:`start`, :meth:`stop`."""

    def __init__(self, bin_dir: Path = DEFAULT_BIN_DIR, *, keep: bool | None = None) -> None:
        self.binary = find_jaeger(bin_dir)
        self.keep = os.environ.get(KEEP_ENV, "") not in ("", "0") if keep is None else keep
        self.workdir = Path(tempfile.mkdtemp(prefix="inferflux-jaeger-"))
        self.otlp_port, self.query_port, self.grpc_port, self.health_port = (free_port() for _ in range(4))
        #: The OTLP/HTTP base URL: set it as ``OTEL_EXPORTER_OTLP_ENDPOINT``.
        self.otlp_endpoint = f"http://127.0.0.1:{self.otlp_port}"
        self.query_url = f"http://127.0.0.1:{self.query_port}"
        self.config_path = self.workdir / "config.yaml"
        self.component = Component(
            "jaeger", [str(self.binary), "--config", str(self.config_path)], self.workdir / "jaeger.log"
        )
        self._http = httpx.Client(timeout=10, trust_env=False)  # loopback only, never via a proxy
        self._started = False
        self._stopped = False
        atexit.register(self.stop)

    def config(self) -> dict[str, Any]:
        """The collector configuration (JSON, which its YAML reader accepts)."""
        host = "127.0.0.1"
        return {
            "service": {
                "extensions": ["jaeger_storage", "jaeger_query", "healthcheckv2"],
                "pipelines": {
                    "traces": {
                        "receivers": ["otlp"],
                        "processors": ["batch"],
                        "exporters": ["jaeger_storage_exporter"],
                    }
                },
                "telemetry": {"metrics": {"level": "none"}, "logs": {"level": "info"}},
            },
            "extensions": {
                "jaeger_storage": {"backends": {"memory_store": {"memory": {"max_traces": 100_000}}}},
                "jaeger_query": {
                    "storage": {"traces": "memory_store"},
                    "http": {"endpoint": f"{host}:{self.query_port}"},
                    "grpc": {"endpoint": f"{host}:{self.grpc_port}"},
                },
                "healthcheckv2": {"use_v2": True, "http": {"endpoint": f"{host}:{self.health_port}"}},
            },
            "receivers": {"otlp": {"protocols": {"http": {"endpoint": f"{host}:{self.otlp_port}"}}}},
            "processors": {"batch": {"timeout": "100ms"}},
            "exporters": {"jaeger_storage_exporter": {"trace_storage": "memory_store"}},
        }

    def start(self, timeout: float = 60) -> Jaeger:
        """Write the config, start Jaeger and wait until it is healthy; stop it on failure."""
        if self._started:
            return self
        self._started = True
        self.config_path.write_text(json.dumps(self.config(), indent=2))
        env = {"HOME": str(self.workdir), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        self.component.start(env)
        deadline = time.monotonic() + timeout
        try:
            while not self._healthy():
                if not self.component.running():
                    raise JaegerError("Jaeger exited at start")
                if time.monotonic() > deadline:
                    raise JaegerError(f"Jaeger was not healthy within {timeout:.0f} s")
                time.sleep(0.1)
        except BaseException as error:
            self.stop(remove=False)
            log = self.component.log_tail()
            self.stop()
            if isinstance(error, JaegerError):
                raise JaegerError(f"{error}\n--- jaeger (last lines) ---\n{log}") from None
            raise
        return self

    def stop(self, *, remove: bool = True, grace: float = 5.0) -> None:
        """SIGTERM Jaeger, SIGKILL it after ``grace`` s, and remove the folder (unless kept)."""
        if not self._stopped:
            self._stopped = True
            atexit.unregister(self.stop)
            self._http.close()
            stop_process(self.component, grace)
        if remove and self.workdir.exists():
            if self.keep:
                print(f"\n[{KEEP_ENV}] Jaeger folder kept: {self.workdir}", file=sys.stderr)
            else:
                shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Jaeger:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def trace(self, trace_id: str) -> dict[str, Any] | None:
        """The stored trace (Jaeger's query API JSON: ``spans`` and ``processes``), or None."""
        response = self._http.get(f"{self.query_url}/api/traces/{trace_id}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        data = response.json().get("data") or []
        return data[0] if data else None

    def wait_trace(self, trace_id: str, spans: int, timeout: float = 30) -> dict[str, Any]:
        """The trace once it holds at least ``spans`` spans (exports arrive in batches)."""
        deadline = time.monotonic() + timeout
        found: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            found = self.trace(trace_id)
            if found is not None and len(found["spans"]) >= spans:
                return found
            time.sleep(0.2)
        have = 0 if found is None else len(found["spans"])
        raise AssertionError(f"trace {trace_id} has {have} spans after {timeout:.0f} s, expected {spans}")

    def _healthy(self) -> bool:
        try:
            return self._http.get(f"http://127.0.0.1:{self.health_port}/status").status_code == 200
        except httpx.HTTPError:
            return False


@pytest.fixture(scope="session")
def jaeger() -> Iterator[Jaeger]:
    """The session's Jaeger: started on first use, stopped and removed after the session.

    A missing binary fails (never skips) the tests that need it, saying to run ``make jaeger-bin``.
    """
    try:
        started: Jaeger | str = Jaeger().start()
    except JaegerError as error:
        started = str(error)
    if isinstance(started, str):  # failing here, outside the handler: no chained traceback
        pytest.fail(started, pytrace=False)
    with started:
        yield started
