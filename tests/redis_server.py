"""A real Redis for tests and benchmarks: Debian's ``redis-server`` on a free loopback port.

Started in a temporary folder without persistence (``--save '' --appendonly no``), or with
``appendonly=True`` with AOF (``--appendonly yes --appendfsync everysec``, or ``appendfsync``
"always") so that `kill` (SIGKILL) and `start` again on the same folder and port show what
survives a crash. Stopped by whoever
started it. Load it with `load()` from a conftest (tests/ is not a package).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pong(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One redis-server process; ``url`` is where to connect."""

    def __init__(
        self, folder: Path, port: int | None = None, appendonly: bool = False, appendfsync: str = "everysec"
    ) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: run make system-deps")
        self.folder = folder
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._command = [
            binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "yes" if appendonly else "no",
            *(["--appendfsync", appendfsync] if appendonly else []),
            "--dir",
            str(folder),
        ]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, within: float = 10.0) -> RedisServer:
        """Start and wait (bounded) until it answers PING."""
        self.folder.mkdir(parents=True, exist_ok=True)
        log = open(self.folder / "redis.log", "ab")  # noqa: SIM115 (owned by the process)
        self.process = subprocess.Popen(self._command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + within
        while not _pong(self.port):
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited: {(self.folder / 'redis.log').read_text()[-500:]}")
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not answer PING in time")
            time.sleep(0.02)
        return self

    def kill(self) -> None:
        """SIGKILL it (a crash: no shutdown, no final save) and wait; `start` brings it back."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def stop(self) -> None:
        """Terminate it and wait."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
