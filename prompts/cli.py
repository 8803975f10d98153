"""``python -m inferflux.prompts``: validate and seal prompt manifests, publish their JSON Schema.

    validate [PATHS...] [--base-ref REV]   schema, checksums, breaking changes against REV
    seal [PATHS...]                        write each manifest's checksum into it
    schema [--check]                       regenerate (or check) prompt-manifest.schema.json

PATHS default to the built-in manifests. Problems print one line each; the exit status is 1 when
there is any problem, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from inferflux.prompts.checksum import compute_checksum
from inferflux.prompts.manifest import ManifestError, load_manifest, manifest_files
from inferflux.prompts.schema import SCHEMA_PATH, schema_drifted, write_schema
from inferflux.prompts.sources import EMBEDDED_DIR
from inferflux.prompts.validate import validate_files

CHECKSUM_LINE = re.compile(r"^checksum:.*$", re.MULTILINE)


def with_checksum(text: str, checksum: str) -> str:
    """The manifest text with its top-level ``checksum:`` set, comments and layout kept."""
    line = f"checksum: {checksum}"
    if CHECKSUM_LINE.search(text):
        return CHECKSUM_LINE.sub(line, text, count=1)
    return text + ("" if text.endswith("\n") else "\n") + line + "\n"


def seal_file(path: Path) -> str:
    """Write the checksum of ``path``'s content into it; returns the checksum."""
    spec = load_manifest(path)
    checksum = compute_checksum(spec)
    if spec.checksum != checksum:
        path.write_text(with_checksum(path.read_text(encoding="utf-8"), checksum), encoding="utf-8")
    return checksum


def _paths(given: Sequence[str]) -> list[Path]:
    """The manifest files to work on: those given, or the built-in ones (shown relative when possible)."""
    default = EMBEDDED_DIR
    if EMBEDDED_DIR.is_relative_to(Path.cwd()):
        default = EMBEDDED_DIR.relative_to(Path.cwd())
    return manifest_files([Path(p) for p in given] or [default])


def cmd_validate(args: argparse.Namespace) -> int:
    paths = _paths(args.paths)
    problems = validate_files(paths, args.base_ref)
    for line in problems:
        print(line, file=sys.stderr)
    if not problems:
        print(f"ok: {len(paths)} manifest(s) valid")
    return 1 if problems else 0


def cmd_seal(args: argparse.Namespace) -> int:
    failed = 0
    for path in _paths(args.paths):
        try:
            print(f"{path}: {seal_file(path)}")
        except ManifestError as error:
            failed += 1
            for problem in error.problems:
                print(f"{path}: {problem}", file=sys.stderr)
    return 1 if failed else 0


def cmd_schema(args: argparse.Namespace) -> int:
    if args.check:
        if schema_drifted():
            print(f"{SCHEMA_PATH}: out of date (run: python -m inferflux.prompts schema)", file=sys.stderr)
            return 1
        return 0
    write_schema()
    print(f"wrote {SCHEMA_PATH}")
    return 0


def parser() -> argparse.ArgumentParser:
    """The command line."""
    top = argparse.ArgumentParser(prog="python -m inferflux.prompts", description=__doc__.split("\n")[0])
    commands = top.add_subparsers(dest="command", required=True)
    validate = commands.add_parser("validate", help="check manifests (and breaking changes vs --base-ref)")
    validate.add_argument("paths", nargs="*", help="manifest files or directories")
    validate.add_argument("--base-ref", help="git revision to compare with, e.g. origin/main")
    validate.set_defaults(run=cmd_validate)
    seal = commands.add_parser("seal", help="write checksums into manifests")
    seal.add_argument("paths", nargs="*", help="manifest files or directories")
    seal.set_defaults(run=cmd_seal)
    schema = commands.add_parser("schema", help="regenerate the published JSON Schema")
    schema.add_argument("--check", action="store_true", help="fail when the file is out of date")
    schema.set_defaults(run=cmd_schema)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status."""
    args = parser().parse_args(argv)
    status: int = args.run(args)
    return status
