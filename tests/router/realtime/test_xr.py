"""The XR context: the latest sample of each kind, fused into the question; receive jitter."""

from __future__ import annotations

from typing import Any

from inferflux.router.realtime.frames import XrFrame
from inferflux.router.realtime.xr import XrContext, snapshot


def test_only_the_latest_sample_of_each_kind_is_fused() -> None:
    context = XrContext()
    assert context.fuse("where am I?") == "where am I?"
    context.update(XrFrame(type="gaze", data={"target": "anchor:door"}, ts=1))
    context.update(XrFrame(type="gaze", data={"target": "anchor:lamp-2"}, ts=2))
    context.update(XrFrame(type="pose", data={"x": 1.5, "y": 0, "z": -2}, ts=2))
    fused = context.fuse("what is this?")
    assert "anchor:door" not in fused
    assert '- gaze: {"target":"anchor:lamp-2"}' in fused
    assert '- pose: {"x":1.5,"y":0,"z":-2}' in fused
    assert fused.endswith("\n\nQuestion: what is this?")


def test_a_huge_sample_is_cut_short() -> None:
    context = XrContext()
    context.update(XrFrame(type="gesture", data={"label": "x" * 5000}, ts=0))
    assert len(context.describe()) < 400


def test_jitter_is_the_spread_of_inter_arrival_times(clock: Any) -> None:
    context = XrContext(clock=clock)
    for index in range(300):
        clock.now = index / 30 + (0.02 if index == 150 else 0.0)  # one frame 20 ms late
        context.update(XrFrame(type="pose", data={}, ts=index))
    jitter = context.jitter_p99()
    assert jitter is not None
    assert jitter < 0.001  # one late frame is under the 99th percentile of 299 intervals
    for index in range(300, 330):
        clock.now = index / 30 + (0.03 if index % 2 else 0.0)  # every other frame 30 ms late
        context.update(XrFrame(type="pose", data={}, ts=index))
    assert snapshot(context)["jitter_p99_ms"] >= 25
    assert snapshot(context)["frames"] == 330
