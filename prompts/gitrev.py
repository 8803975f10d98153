"""Reading manifests as they were at a git revision (the base of a change), for the validator."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


class GitError(RuntimeError):
    """git could not answer (not a repository, unknown revision, ...); the message is one line."""


def _git(args: list[str], cwd: Path) -> str:
    git = shutil.which("git")
    if git is None:
        raise GitError("git is not installed")
    try:
        done = subprocess.run(  # noqa: S603 - fixed argv, no shell
            [git, *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise GitError(f"cannot run git: {error}") from None
    if done.returncode != 0:
        detail = (done.stderr.strip().splitlines() or ["git failed"])[-1]
        raise GitError(detail)
    return done.stdout


def files_at(revision: str, directory: Path) -> dict[str, str]:
    """The text of each file directly in ``directory`` as of ``revision``, by file name."""
    directory = directory.resolve()
    top = Path(_git(["rev-parse", "--show-toplevel"], directory).strip())
    relative = directory.relative_to(top).as_posix()
    try:
        _git(["rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}"], top)
    except GitError:
        raise GitError(f"unknown revision {revision!r}") from None
    try:
        _git(["cat-file", "-e", f"{revision}:{relative}"], top)
    except GitError:
        return {}  # the directory is new: nothing to compare with
    listing = _git(["ls-tree", "--name-only", f"{revision}:{relative}" if relative != "." else revision], top)
    found: dict[str, str] = {}
    for name in listing.splitlines():
        if name.endswith((".yaml", ".yml")):
            path = f"{relative}/{name}" if relative != "." else name
            found[name] = _git(["show", f"{revision}:{path}"], top)
    return found
