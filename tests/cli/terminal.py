"""Drive a command in a real pseudo-terminal: type lines, wait for text on the screen."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path


class Terminal:
    """A child process whose stdin, stdout and stderr are one pty, as in a terminal emulator."""

    def __init__(self, argv: Sequence[str], cwd: Path) -> None:
        self.master, slave = pty.openpty()
        self.process = subprocess.Popen(
            list(argv),
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=cwd,
            start_new_session=True,
            close_fds=True,
        )
        os.close(slave)
        self.screen = ""

    def expect(self, text: str, timeout: float = 20.0) -> str:
        """Read until ``text`` appears after what was already consumed; return everything up to it."""
        deadline = time.monotonic() + timeout
        while text not in self.screen:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{text!r} did not appear; screen so far: {self.screen!r}")
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    self.screen += os.read(self.master, 4096).decode(errors="replace").replace("\r\n", "\n")
                except OSError:  # the child closed the pty
                    raise AssertionError(f"{text!r} did not appear before exit: {self.screen!r}") from None
        before, _, self.screen = self.screen.partition(text)
        return before + text

    def send(self, line: str) -> None:
        """Type ``line`` and Enter."""
        os.write(self.master, (line + "\n").encode())

    def close(self) -> int:
        """Ctrl-D, then wait for the exit status."""
        os.write(self.master, b"\x04")
        status = self.process.wait(10)
        os.close(self.master)
        return status
