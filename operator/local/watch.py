"""Follow YAML files while ``inferctl up`` runs: an edit is applied like a ``kubectl apply``.

Polling mtimes once a second is enough for files edited by hand, and works on every filesystem
without extra dependencies.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path

from inferflux.operator.local.launcher import Launcher
from inferflux.operator.local.resources import ResourceError, load, yaml_files

Fingerprint = tuple[tuple[str, int, int], ...]


def fingerprint(paths: Iterable[Path]) -> Fingerprint:
    """Name, mtime and size of every YAML file under ``paths``: it changes when any file does."""
    found = []
    for path in yaml_files(paths):
        try:
            stat = path.stat()
        except OSError:
            continue
        found.append((str(path), stat.st_mtime_ns, stat.st_size))
    return tuple(found)


def apply_files(launcher: Launcher, paths: list[Path]) -> bool:
    """Load and apply ``paths``; report problems through the launcher and return False if any."""
    try:
        resources = load(paths)
    except ResourceError as error:
        launcher.say(f"not applied: {error}")
        return False
    problems = launcher.apply(resources)
    for problem in problems:
        launcher.say(f"not applied: {problem}")
    return not problems


def follow(
    launcher: Launcher,
    paths: list[Path],
    seen: Fingerprint,
    interval: float = 1.0,
    keep_going: Callable[[], bool] = lambda: True,
) -> None:
    """Re-apply on every change since ``seen`` and restart dead replicas, until ``keep_going`` says stop.

    ``seen`` is taken before the first apply, so an edit made while models were starting is not lost.
    """
    while keep_going():
        time.sleep(interval)
        launcher.heal()
        try:
            now = fingerprint(paths)
        except ResourceError as error:
            launcher.say(f"not applied: {error}")
            continue
        if now != seen:
            seen = now
            launcher.say("change detected: applying")
            if apply_files(launcher, paths):
                launcher.say("applied")
