"""``inferctl pricing checksum FILE [--write]``: seal a pricing file (router/budgets/pricing.py).

Prints the checksum the file's content has. With ``--write`` it sets the file's top-level
``checksum:`` line (appending one if there is none) and leaves every other line as it was. Without
``--write`` it exits 1 when the file declares a different checksum, so CI can check a file is sealed.
An invalid file exits 1 with one line.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from inferflux.cli.errors import CliError
from inferflux.router.budgets.pricing import PricingError, parse_pricing, read_document

_CHECKSUM_LINE = re.compile(r"^checksum:.*$", re.MULTILINE)


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``pricing checksum``."""
    parser = commands.add_parser("pricing", help="seal pricing files for budgets")
    actions = parser.add_subparsers(metavar="ACTION", required=True)
    checksum = actions.add_parser("checksum", help="print (or --write) a pricing file's checksum")
    checksum.add_argument("file", type=Path, help="the pricing file (YAML)")
    checksum.add_argument("--write", action="store_true", help="write the checksum into the file")
    checksum.set_defaults(run=run_checksum)


def sealed_text(text: str, checksum: str) -> str:
    """``text`` with its top-level ``checksum:`` line set to ``checksum`` (pure)."""
    line = f'checksum: "{checksum}"'
    if _CHECKSUM_LINE.search(text):
        return _CHECKSUM_LINE.sub(line, text, count=1)
    return text + ("" if text.endswith("\n") or not text else "\n") + line + "\n"


def run_checksum(args: argparse.Namespace) -> int:
    """Print the checksum; write it, or fail when the declared one differs."""
    path: Path = args.file
    try:
        pricing, actual = parse_pricing(read_document(path), str(path))
    except PricingError as error:
        raise CliError(str(error)) from None
    print(actual)
    if args.write:
        if pricing.checksum != actual:
            path.write_text(sealed_text(path.read_text(encoding="utf-8"), actual), encoding="utf-8")
            _, written = parse_pricing(read_document(path), str(path))
            if written != actual:  # the file's layout defeated the line edit
                raise CliError(f"{path}: could not write the checksum line; set checksum: {actual} by hand")
        return 0
    if pricing.checksum is not None and pricing.checksum != actual:
        raise CliError(f"{path}: declares {pricing.checksum}, expected {actual} (use --write)")
    return 0
