"""router/heap.py: objects alive at startup leave the collector's generations; young passes are rarer."""

from __future__ import annotations

import gc

from inferflux.router.heap import YOUNG_THRESHOLD, freeze_startup_heap


def test_objects_alive_at_startup_are_no_longer_scanned_by_the_collector() -> None:
    startup_object = {"kept": ["for the life of the process"]}
    thresholds = gc.get_threshold()
    try:
        frozen = freeze_startup_heap()
        assert frozen >= 1
        assert frozen == gc.get_freeze_count()
        assert not any(tracked is startup_object for tracked in gc.get_objects())
        later = {"made": ["after startup"]}
        assert any(tracked is later for tracked in gc.get_objects())  # new objects are collected as ever
        assert gc.get_threshold() == (YOUNG_THRESHOLD, *thresholds[1:])  # young passes are rarer
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
    assert any(tracked is startup_object for tracked in gc.get_objects())
