"""The memory guard on fake cgroup trees: v2, v2 without a limit, v1, and /proc/meminfo only."""

from __future__ import annotations

from pathlib import Path

import pytest

from inferflux.runtime.memory import (
    MemoryReading,
    fit_problem,
    headroom_ratio,
    model_footprint,
    process_rss,
    read_memory,
    within_budget,
)

MEMINFO = "MemTotal:       16000000 kB\nMemFree:         1000 kB\nMemAvailable:    12000000 kB\n"


def tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_cgroup_v2_own_cgroup(tmp_path: Path) -> None:
    root = tree(
        tmp_path,
        {
            "proc/self/cgroup": "0::/kubepods/pod1\n",
            "proc/meminfo": MEMINFO,
            "sys/fs/cgroup/kubepods/pod1/memory.max": "1073741824\n",
            "sys/fs/cgroup/kubepods/pod1/memory.current": "268435456\n",
            "sys/fs/cgroup/memory.max": "max\n",
            "sys/fs/cgroup/memory.current": "5\n",
        },
    )
    reading = read_memory(root)
    assert reading == MemoryReading(1 << 30, 1 << 28, "cgroup2")
    assert reading.headroom == 3 << 28


def test_cgroup_v2_without_limit_uses_machine_memory(tmp_path: Path) -> None:
    root = tree(
        tmp_path,
        {
            "proc/self/cgroup": "0::/\n",
            "proc/meminfo": MEMINFO,
            "sys/fs/cgroup/memory.max": "max\n",
            "sys/fs/cgroup/memory.current": "1024\n",
        },
    )
    reading = read_memory(root)
    assert reading.source == "cgroup2+meminfo"
    assert reading.limit == 16000000 * 1024
    assert reading.used == 4000000 * 1024


def test_cgroup_v1(tmp_path: Path) -> None:
    root = tree(
        tmp_path,
        {
            "proc/self/cgroup": "4:memory:/docker/x\n",
            "proc/meminfo": MEMINFO,
            "sys/fs/cgroup/memory/memory.limit_in_bytes": "2147483648\n",
            "sys/fs/cgroup/memory/memory.usage_in_bytes": "1073741824\n",
        },
    )
    assert read_memory(root) == MemoryReading(2 << 30, 1 << 30, "cgroup1")


def test_cgroup_v1_own_group_below_the_host_root(tmp_path: Path) -> None:
    # no cgroup namespace: the mount shows the host's root (unlimited), the limit is on our group
    root = tree(
        tmp_path,
        {
            "proc/self/cgroup": "5:cpu:/other\n4:memory,hugetlb:/process_api/abc\n0::/\n",
            "proc/meminfo": MEMINFO,
            "sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n",
            "sys/fs/cgroup/memory/memory.usage_in_bytes": "8589934592\n",
            "sys/fs/cgroup/memory/process_api/abc/memory.limit_in_bytes": "4294967296\n",
            "sys/fs/cgroup/memory/process_api/abc/memory.usage_in_bytes": "1073741824\n",
        },
    )
    assert read_memory(root) == MemoryReading(4 << 30, 1 << 30, "cgroup1")


def test_cgroup_v1_unlimited_falls_back_to_meminfo(tmp_path: Path) -> None:
    root = tree(
        tmp_path,
        {
            "proc/meminfo": MEMINFO,
            "sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n",
            "sys/fs/cgroup/memory/memory.usage_in_bytes": "1073741824\n",
        },
    )
    assert read_memory(root).source == "meminfo"


def test_nothing_readable(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="cannot read memory"):
        read_memory(tmp_path)


def test_process_budget_applies_only_when_it_is_tighter(tmp_path: Path) -> None:
    pod = MemoryReading(limit=8 << 30, used=2 << 30, source="cgroup2")
    assert within_budget(pod, 0, 1 << 30) is pod  # no budget
    assert within_budget(pod, 16 << 30, 1 << 30) is pod  # 15 GiB left in the budget, 6 in the pod
    tight = within_budget(pod, 3 << 30, 1 << 30)
    assert tight == MemoryReading(3 << 30, 1 << 30, "budget")
    assert tight.headroom == 2 << 30
    status = tree(tmp_path, {"proc/self/status": "Name:\tpython\nVmHWM:\t  900 kB\nVmRSS:\t  512 kB\n"})
    assert process_rss(status) == 512 * 1024
    assert process_rss(tmp_path / "nowhere") == 0


def test_fit_needs_the_headroom_factor_times_the_footprint() -> None:
    reading = MemoryReading(limit=1000, used=400, source="cgroup2")  # 600 free
    assert model_footprint(300, 10, 10) == 400
    assert fit_problem(reading, 400, factor=1.5) is None  # 600 needed, 600 free
    problem = fit_problem(reading, 400, factor=1.6)
    assert problem
    assert "needs 640 bytes (1.6 x 400) but only 600 of 1000 are free" in problem
    assert fit_problem(reading, 500) == fit_problem(reading, 500, factor=1.3)  # the default
    assert headroom_ratio(reading, 400) == 1.5
    assert headroom_ratio(reading, 0) == 0.0
