"""N router worker processes on one port: a small supervisor for ``INFERFLUX_ROUTER_WORKERS`` > 1.

Each worker is a whole ``python -m inferflux.router`` process that binds the public and the admin
port with ``SO_REUSEPORT``, so the kernel spreads new connections over the workers. Workers share
nothing but Redis (policy, budgets, replay buffer) and the resume keys file, which is why more
than one worker needs both (`check`). Each worker writes its own audit chain
(``<chain>-w<index>``), since two processes must never append to the same file.

The supervisor forwards SIGTERM and SIGINT to every worker and waits for them. If a worker exits
on its own (it failed to start, or crashed), the supervisor stops the others and exits non-zero
with one line, so that the pod restarts as a whole rather than serving with fewer workers.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from types import FrameType

from inferflux.router.settings import Settings, SettingsError

POLL_SECONDS = 0.1
STOP_SECONDS = 40.0  # beyond the workers' 30 s graceful shutdown


def check(settings: Settings) -> None:
    """`SettingsError` unless the settings allow ``settings.workers`` processes to share one port."""
    if settings.workers < 1:
        raise SettingsError("INFERFLUX_ROUTER_WORKERS must be at least 1")
    if settings.workers == 1:
        return
    if not settings.redis_url:
        raise SettingsError(
            "INFERFLUX_ROUTER_WORKERS > 1 needs INFERFLUX_REDIS_URL: workers share state only in Redis"
        )
    if not settings.resume_keys_file:
        raise SettingsError(
            "INFERFLUX_ROUTER_WORKERS > 1 needs INFERFLUX_RESUME_KEYS_FILE: every worker must verify "
            "the resume tokens the others sign"
        )


def worker_env(settings: Settings, index: int, environ: dict[str, str]) -> dict[str, str]:
    """The environment of worker ``index``: one worker, ``SO_REUSEPORT``, its own audit chain."""
    env = {**environ, "INFERFLUX_ROUTER_WORKERS": "1", "INFERFLUX_ROUTER_REUSE_PORT": "true"}
    if settings.audit_dir:
        env["INFERFLUX_AUDIT_CHAIN"] = f"{settings.audit_chain or socket.gethostname()}-w{index}"
    return env


def _stop(workers: list[subprocess.Popen[bytes]], deadline: float) -> None:
    for worker in workers:
        if worker.poll() is None:
            worker.terminate()
    for worker in workers:
        try:
            worker.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def supervise(settings: Settings) -> int:
    """Run ``settings.workers`` workers until a signal (exit 0) or a worker's own exit (exit 1)."""
    stopping: list[int] = []

    def forward(signum: int, frame: FrameType | None) -> None:
        stopping.append(signum)
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signum)

    workers: list[subprocess.Popen[bytes]] = []
    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    environ = dict(os.environ)
    for index in range(settings.workers):
        workers.append(
            subprocess.Popen(
                [sys.executable, "-m", "inferflux.router"], env=worker_env(settings, index, environ)
            )
        )
    while True:
        codes = [worker.poll() for worker in workers]
        if stopping:
            if all(code is not None for code in codes):
                return 0 if all(code == 0 for code in codes) else 1
        else:
            for index, code in enumerate(codes):
                if code is not None:
                    print(
                        f"inferflux-router: worker {index} exited with code {code}; stopping the others",
                        file=sys.stderr,
                    )
                    _stop(workers, time.monotonic() + STOP_SECONDS)
                    return 1
        time.sleep(POLL_SECONDS)
