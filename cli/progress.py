"""A download progress bar for a terminal, or plain milestone lines when output is not a terminal."""

from __future__ import annotations

import time
from typing import TextIO

BAR_WIDTH = 30
MIB = 1 << 20


def render(done: int, total: int | None, rate: float) -> str:
    """One progress line: percentage and bar when the total is known, always bytes and speed."""
    speed = f"{rate / MIB:.1f} MiB/s"
    if not total:
        return f"{done / MIB:8.1f} MiB  {speed}"
    fraction = min(done / total, 1.0)
    filled = int(fraction * BAR_WIDTH)
    bar = "#" * filled + "." * (BAR_WIDTH - filled)
    return f"{fraction:4.0%} [{bar}] {done / MIB:.1f}/{total / MIB:.1f} MiB  {speed}"


class ProgressBar:
    """Redraws in place on a terminal; elsewhere prints a line at each quarter, so logs stay short."""

    def __init__(self, stream: TextIO, label: str) -> None:
        self.stream = stream
        self.label = label
        self.interactive = stream.isatty()
        self.started = time.monotonic()
        self.last_draw = 0.0
        self.last_quarter = -1

    def __call__(self, done: int, total: int | None) -> None:
        """Report that ``done`` of ``total`` bytes have arrived."""
        now = time.monotonic()
        rate = done / max(now - self.started, 1e-6)
        finished = total is not None and done >= total
        if self.interactive:
            if finished or now - self.last_draw >= 0.1:
                self.stream.write(f"\r{self.label} {render(done, total, rate)}")
                self.last_draw = now
        else:
            quarter = int(4 * done / total) if total else 0
            if quarter > self.last_quarter:
                self.stream.write(f"{self.label} {render(done, total, rate)}\n")
                self.last_quarter = quarter
        self.stream.flush()

    def close(self) -> None:
        """End the in-place line."""
        if self.interactive:
            self.stream.write("\n")
            self.stream.flush()
