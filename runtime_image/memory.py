"""The memory guard: how much memory this pod may still use, read from its cgroup.

cgroup v2 (``memory.max`` / ``memory.current`` of the process's own cgroup), then cgroup v1
(``memory.limit_in_bytes`` / ``memory.usage_in_bytes``), then ``/proc/meminfo`` when no limit is
set. A budget for the runtime process alone (``INFERFLUX_MEMORY_LIMIT``), measured against its own
RSS, tightens that further. The admin API asks it whether a second model fits before loading it
beside the first.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# cgroup v1 reports "no limit" as a huge page-aligned number rather than "max".
_V1_UNLIMITED = 1 << 62


@dataclass(frozen=True)
class MemoryReading:
    """Bytes the pod may use (``limit``) and uses now (``used``), and where that was read."""

    limit: int
    used: int
    source: str

    @property
    def headroom(self) -> int:
        """Bytes left before the limit."""
        return max(self.limit - self.used, 0)


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def own_cgroup_path(root: Path, controller: str = "") -> str:
    """This process's cgroup path from ``/proc/self/cgroup``, or ``/``.

    The v2 entry (``0::/kubepods/...``) when ``controller`` is empty, else the v1 entry whose
    controller list names it (``4:memory:/docker/...``).
    """
    try:
        for line in (root / "proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            if (controller in controllers.split(",")) if controller else line.startswith("0::"):
                return path or "/"
    except (OSError, ValueError):
        pass
    return "/"


def meminfo(root: Path) -> MemoryReading | None:
    """Machine memory from ``/proc/meminfo``: the total, and what is not available."""
    try:
        lines = (root / "proc/meminfo").read_text().splitlines()
        fields = dict(line.split(":", 1) for line in lines if ":" in line)
        total = int(fields["MemTotal"].split()[0]) * 1024
        available = int(fields["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return None
    return MemoryReading(total, total - available, "meminfo")


def read_memory(root: Path = Path("/")) -> MemoryReading:
    """The tightest limit that applies to this process, with its current usage.

    Raises ``RuntimeError`` when neither a cgroup nor ``/proc/meminfo`` can be read.
    """
    machine = meminfo(root)
    v2 = root / "sys/fs/cgroup" / own_cgroup_path(root).lstrip("/")
    for directory in (v2, root / "sys/fs/cgroup"):
        used = _read_int(directory / "memory.current")
        if used is not None:
            limit = _read_int(directory / "memory.max")  # None when "max": no limit here
            if limit is not None:
                return MemoryReading(limit, used, "cgroup2")
            if machine is not None:
                return MemoryReading(machine.limit, max(used, machine.used), "cgroup2+meminfo")
    v1 = root / "sys/fs/cgroup/memory"
    # Without a cgroup namespace the mount shows the host's root; the process's own group is below.
    for directory in (v1 / own_cgroup_path(root, "memory").lstrip("/"), v1):
        used = _read_int(directory / "memory.usage_in_bytes")
        limit = _read_int(directory / "memory.limit_in_bytes")
        if used is not None and limit is not None and limit < _V1_UNLIMITED:
            return MemoryReading(limit, used, "cgroup1")
    if machine is None:
        raise RuntimeError("cannot read memory limits: no cgroup files and no /proc/meminfo")
    return machine


def process_rss(root: Path = Path("/")) -> int:
    """Resident bytes of this process (``VmRSS``), or 0 when unreadable."""
    try:
        for line in (root / "proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def within_budget(reading: MemoryReading, budget: int, rss: int) -> MemoryReading:
    """The tighter of the pod's reading and a budget for this process alone (its RSS counts).

    A budget of 0 means none. The budget is for a process that shares its pod with others (a
    sidecar, a second container) or for tests: the pod limit alone would let it take everything.
    """
    if budget <= 0 or budget - rss >= reading.headroom:
        return reading
    return MemoryReading(budget, rss, "budget")


# A generous KV estimate per token (f16 K and V of a few-billion-parameter model), used where the
# model's real shape is not known yet.
KV_BYTES_PER_TOKEN = 128 * 1024
DEFAULT_HEADROOM_FACTOR = 1.3


def model_footprint(file_bytes: int, context_size: int, kv_bytes_per_token: int = KV_BYTES_PER_TOKEN) -> int:
    """Bytes a model needs loaded: its weights (the mapped file) plus its KV cache."""
    return file_bytes + context_size * kv_bytes_per_token


def fit_problem(
    reading: MemoryReading, footprint: int, factor: float = DEFAULT_HEADROOM_FACTOR
) -> str | None:
    """Why a model of ``footprint`` bytes would not fit beside what runs (None when it fits).

    It fits when the headroom is at least ``factor`` times its footprint (the rollout's
    ``memoryHeadroomFactor``): the factor covers what the estimate misses (compute buffers, the
    allocator) and leaves the pod room to keep serving while both models are loaded.
    """
    need = int(footprint * factor)
    if need > reading.headroom:
        return (
            f"needs {need} bytes ({factor:g} x {footprint}) but only {reading.headroom} of "
            f"{reading.limit} are free ({reading.source})"
        )
    return None


def headroom_ratio(reading: MemoryReading, footprint: int) -> float:
    """Headroom over the footprint of the model served now.

    Below the headroom factor, a swap to a model of the same size would be refused: the runtime's
    ``memory_headroom_low`` gauge and the chart's alert of that name.
    """
    return reading.headroom / footprint if footprint else 0.0
