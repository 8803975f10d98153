"""The TypeScript SDK's package folder (sdk/typescript) and a way to run a command in it, for the
tests that drive its ``node --test`` files against a real router (test_typescript*.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "sdk" / "typescript"


async def run(
    *command: str, env: dict[str, str] | None = None, cwd: Path = PACKAGE, within: float = 300
) -> tuple[int, str]:
    """Run ``command`` in ``cwd``; its exit code and its output (stdout and stderr together)."""
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), within)
    assert process.returncode is not None
    return process.returncode, output.decode()
