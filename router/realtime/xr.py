"""The spatial context of an XR session: the latest pose, gaze, gesture and voice-activity sample.

Frames arrive at up to 30 Hz; only the newest of each kind is kept (a constant amount of memory),
with the inter-arrival times of the last ``WINDOW`` frames so the session's receive jitter can be
reported. When the user asks something, `fuse` writes the context as plain text in front of the
question, as the user's own turn (it is client data, never system text); the ``xr`` prompt's
``gesture_aware`` slice tells the model how to use it.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from inferflux.router.realtime.frames import XrFrame

WINDOW = 4096
MAX_SAMPLE_CHARS = 300
KINDS = ("gaze", "gesture", "pose", "voice_vad")


@dataclass
class XrContext:
    """The newest sample of each kind, and how regularly they arrived."""

    clock: Callable[[], float] = time.perf_counter
    latest: dict[str, XrFrame] = field(default_factory=dict)
    received: int = 0
    intervals: deque[float] = field(default_factory=lambda: deque(maxlen=WINDOW))
    _last: float | None = None

    def update(self, frame: XrFrame) -> None:
        """Keep ``frame`` as the latest of its kind."""
        now = self.clock()
        if self._last is not None:
            self.intervals.append(now - self._last)
        self._last = now
        self.latest[frame.type] = frame
        self.received += 1

    def jitter_p99(self) -> float | None:
        """The 99th percentile of |interval - median interval|, in seconds (None under 2 samples)."""
        if len(self.intervals) < 2:
            return None
        ordered = sorted(self.intervals)
        median = ordered[len(ordered) // 2]
        deviations = sorted(abs(value - median) for value in self.intervals)
        return deviations[min(len(deviations) - 1, int(0.99 * len(deviations)))]

    def describe(self) -> str:
        """The context as lines of text, one per kind, each bounded in length."""
        lines = []
        for kind in KINDS:
            frame = self.latest.get(kind)
            if frame is not None:
                sample = orjson.dumps(frame.data, option=orjson.OPT_SORT_KEYS).decode()
                lines.append(f"- {kind}: {sample[:MAX_SAMPLE_CHARS]}")
        return "\n".join(lines)

    def fuse(self, question: str) -> str:
        """The user's turn: the spatial context, then the question."""
        context = self.describe()
        if not context:
            return question
        return f"Spatial context (latest samples):\n{context}\n\nQuestion: {question}"


def snapshot(context: XrContext) -> dict[str, Any]:
    """What the session's ``metrics`` say about the spatial stream."""
    jitter = context.jitter_p99()
    return {
        "frames": context.received,
        "jitter_p99_ms": round(jitter * 1000, 2) if jitter is not None else None,
    }
