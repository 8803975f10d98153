"""``inferctl pricing checksum``: print, write and check a pricing file's checksum."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from inferflux.router.budgets.pricing import load_pricing

INFERCTL = str(Path(sys.executable).parent / "inferctl")
UNSEALED = """\
# prices for internal chargeback
version: "1"
currency: EUR
models:
  smollm2: {inputPerMillion: "0.02", outputPerMillion: "0.04", maxOutputTokens: 2048}
"""


def inferctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [INFERCTL, "pricing", "checksum", *args], capture_output=True, text=True, timeout=60
    )


def test_write_seals_the_file_keeping_its_lines(tmp_path: Path) -> None:
    path = tmp_path / "pricing.yaml"
    path.write_text(UNSEALED)
    printed = inferctl(str(path))
    assert printed.returncode == 0
    checksum = printed.stdout.strip()
    assert checksum.startswith("sha256:")
    written = inferctl(str(path), "--write")
    assert written.returncode == 0
    assert path.read_text().startswith(UNSEALED)  # the comment and layout are kept
    assert load_pricing(path).checksum == checksum
    # A stale checksum line is replaced, not duplicated.
    path.write_text(path.read_text().replace('"0.04"', '"0.05"'))
    assert inferctl(str(path)).returncode == 1
    assert inferctl(str(path), "--write").returncode == 0
    assert path.read_text().count("checksum:") == 1
    assert load_pricing(path).checksum != checksum


def test_wrong_files_exit_non_zero_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "pricing.yaml"
    path.write_text(UNSEALED.replace("EUR", "euro"))
    result = inferctl(str(path), "--write")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "currency" in result.stderr
    assert "Traceback" not in result.stderr
    assert path.read_text() == UNSEALED.replace("EUR", "euro")


def test_a_mismatching_checksum_fails_the_check(tmp_path: Path) -> None:
    path = tmp_path / "pricing.yaml"
    path.write_text(UNSEALED + 'checksum: "sha256:' + "0" * 64 + '"\n')
    result = inferctl(str(path))
    assert result.returncode == 1
    assert "declares sha256:000" in result.stderr
    assert result.stdout.strip().startswith("sha256:")
