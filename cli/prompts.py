"""``inferctl prompts validate|diff``: the prompt checks CI runs, and what a change does to each prompt.

``validate`` is ``python -m inferflux.prompts validate`` (same code, same output). ``diff`` compares
each manifest with its version at a git revision: version step, changed slices as a unified diff,
and the breaking changes that would need a major bump.
"""

from __future__ import annotations

import argparse
import difflib
from pathlib import Path

from inferflux.cli.errors import CliError
from inferflux.crds.prompt import PromptSpec
from inferflux.prompts import cli as prompts_cli
from inferflux.prompts.breaking import breaking_changes, version_problems
from inferflux.prompts.gitrev import GitError
from inferflux.prompts.manifest import ManifestError, load_manifest, manifest_files
from inferflux.prompts.sources import EMBEDDED_DIR
from inferflux.prompts.validate import base_specs


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``prompts validate`` and ``prompts diff``."""
    parser = commands.add_parser(
        "prompts", help="validate prompt manifests, or diff them against a git revision"
    )
    actions = parser.add_subparsers(metavar="ACTION", required=True)
    validate = actions.add_parser("validate", help="schema, checksums and breaking changes (as CI runs them)")
    validate.add_argument("paths", nargs="*", help="manifest files or folders (default: the built-in ones)")
    validate.add_argument("--base-ref", help="git revision to check breaking changes against")
    validate.set_defaults(run=run_validate)
    diff = actions.add_parser("diff", help="what changed in each prompt since a git revision")
    diff.add_argument(
        "paths", nargs="*", type=Path, help="manifest files or folders (default: the built-in ones)"
    )
    diff.add_argument("--base-ref", default="HEAD", help="git revision to compare with (default: HEAD)")
    diff.set_defaults(run=run_diff)


def run_validate(args: argparse.Namespace) -> int:
    """Delegate to the prompts package's own validator."""
    argv = ["validate", *args.paths] + (["--base-ref", args.base_ref] if args.base_ref else [])
    return prompts_cli.main(argv)


def describe_change(old: PromptSpec | None, new: PromptSpec) -> list[str]:
    """Lines describing how ``new`` differs from ``old`` (pure)."""
    if old is None:
        return [f"{new.id}: new at {new.version}"]
    changed = sorted(n for n in set(old.slices) | set(new.slices) if old.slices.get(n) != new.slices.get(n))
    same_variables = old.variables == new.variables
    if not changed and same_variables and old.version == new.version:
        return [f"{new.id}: unchanged ({new.version})"]
    lines = [f"{new.id}: {old.version} -> {new.version}"]
    lines += [f"  breaking: {b}" for b in breaking_changes(old, new)]
    lines += [f"  problem: {p}" for p in version_problems(old, new)]
    if not same_variables:
        lines.append("  variables schema changed")
    for name in changed:
        before = (old.slices.get(name) or "").splitlines()
        after = (new.slices.get(name) or "").splitlines()
        diff = difflib.unified_diff(
            before, after, f"{name}@{old.version}", f"{name}@{new.version}", lineterm=""
        )
        lines += [f"  {line}" for line in diff]
    return lines


def run_diff(args: argparse.Namespace) -> int:
    """Print each prompt's change since ``--base-ref``; exit 1 when a change breaks versioning rules."""
    files = manifest_files(args.paths or [EMBEDDED_DIR])
    specs = []
    for path in files:
        try:
            specs.append(load_manifest(path))
        except ManifestError as error:
            raise CliError(f"{path}: {'; '.join(error.problems)}") from None
    try:
        base = base_specs(args.base_ref, sorted({path.parent for path in files}))
    except GitError as error:
        raise CliError(f"cannot read prompts at {args.base_ref}: {error}") from None
    lines = [line for spec in specs for line in describe_change(base.get(spec.id), spec)]
    print("\n".join(lines))
    return 1 if any(line.startswith("  problem:") for line in lines) else 0
