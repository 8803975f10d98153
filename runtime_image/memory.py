"""The memory guard: how much memory this pod may still use, read from its cgroup.

cgroup v2 (``memory.max`` / ``memory.current`` of the process's own cgroup), then cgroup v1
(``memory.limit_in_bytes`` / ``memory.usage_in_bytes``), then ``/proc/meminfo`` when no limit is
set. The admin API asks it whether a second model fits before loading it beside the first.
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

    @property
    def headroom_ratio(self) -> float:
        """Headroom as a share of the limit."""
        return self.headroom / self.limit if self.limit else 0.0


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def own_cgroup_v2_path(root: Path) -> str:
    """This process's cgroup v2 path from ``/proc/self/cgroup`` (``0::/kubepods/...``), or ``/``."""
    try:
        for line in (root / "proc/self/cgroup").read_text().splitlines():
            if line.startswith("0::"):
                return line[3:] or "/"
    except OSError:
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
    v2 = root / "sys/fs/cgroup" / own_cgroup_v2_path(root).lstrip("/")
    for directory in (v2, root / "sys/fs/cgroup"):
        used = _read_int(directory / "memory.current")
        if used is not None:
            limit = _read_int(directory / "memory.max")  # None when "max": no limit here
            if limit is not None:
                return MemoryReading(limit, used, "cgroup2")
            if machine is not None:
                return MemoryReading(machine.limit, max(used, machine.used), "cgroup2+meminfo")
    v1 = root / "sys/fs/cgroup/memory"
    used = _read_int(v1 / "memory.usage_in_bytes")
    limit = _read_int(v1 / "memory.limit_in_bytes")
    if used is not None and limit is not None and limit < _V1_UNLIMITED:
        return MemoryReading(limit, used, "cgroup1")
    if machine is None:
        raise RuntimeError("cannot read memory limits: no cgroup files and no /proc/meminfo")
    return machine


def model_footprint(file_bytes: int, context_size: int, kv_bytes_per_token: int) -> int:
    """Bytes a model needs loaded: its weights (mapped file) plus its KV cache, plus 10 % slack."""
    return int((file_bytes + context_size * kv_bytes_per_token) * 1.1)


def fit_problem(reading: MemoryReading, need: int, reserve_ratio: float = 0.05) -> str | None:
    """Why ``need`` more bytes would not fit under the limit (keeping a reserve), or None when it fits."""
    reserve = int(reading.limit * reserve_ratio)
    if need + reserve > reading.headroom:
        return (
            f"needs {need} bytes plus a {reserve}-byte reserve but only {reading.headroom} of "
            f"{reading.limit} are free ({reading.source})"
        )
    return None
