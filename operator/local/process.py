"""One supervised child process: started in its own session, probed for readiness, stopped for sure.

Each child runs in its own process group, so the terminal's Ctrl-C reaches only ``inferctl``, which
then stops the children in order. On Linux each child also asks the kernel for SIGTERM when its
parent dies, so even a ``kill -9`` of ``inferctl`` leaves no orphan serving a port.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

PR_SET_PDEATHSIG = 1
POLL_SECONDS = 0.25


class StartError(RuntimeError):
    """A child exited or never became ready; the message ends with the last line of its log."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def port_in_use(host: str, port: int) -> bool:
    """True when something already listens on ``host:port`` (a child could not bind it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def last_log_line(path: Path) -> str:
    """The last error line of a log (else its last line), for one-line error messages."""
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    errors = [line for line in lines if "error" in line.lower()]
    return (errors or lines or [""])[-1][:300]


class Child:
    """A child process with a name, a base URL and a log file."""

    def __init__(
        self, name: str, argv: Sequence[str], env: Mapping[str, str], url: str, log_path: Path
    ) -> None:
        self.name = name
        self.url = url
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            self.popen = subprocess.Popen(  # noqa: S603 - argv is built by the launcher, not a shell
                list(argv),
                env={**os.environ, **env},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )

    @property
    def pid(self) -> int:
        """The child's process id (and process group id)."""
        return self.popen.pid

    def alive(self) -> bool:
        """True while the process runs."""
        return self.popen.poll() is None

    def failure(self, what: str) -> StartError:
        """An error naming this child, its log and the log's last line."""
        last = last_log_line(self.log_path)
        return StartError(f"{self.name} {what} (log {self.log_path}){': ' + last if last else ''}")

    def wait_ready(self, timeout: float, path: str = "/readyz") -> float:
        """Block until ``GET <url><path>`` answers 200; return the seconds it took."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if not self.alive():
                raise self.failure(f"exited with status {self.popen.returncode}")
            if _answers_ok(self.url + path):
                return time.monotonic() - started
            time.sleep(POLL_SECONDS)
        raise self.failure(f"was not ready after {timeout:.0f}s")

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the process group, then SIGKILL it after ``grace`` seconds; reap the child."""
        if self.alive():
            _signal_group(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                _signal_group(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(grace)
        _signal_group(self.pid, signal.SIGKILL)  # anything the child itself left in its group


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _answers_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - http://127.0.0.1 only
            return int(response.status) == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False
