"""``inferctl``: one entry point, one subcommand per module, errors as one line and an exit status."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from inferflux.cli import admin, audit, batch, chat, models, pricing, prompts, pull, up
from inferflux.cli.errors import CliError

COMMANDS = (up, chat, models, prompts, pull, admin, pricing, audit, batch)


def parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    root = argparse.ArgumentParser(
        prog="inferctl", description="InferFlux: local mode, chat and admin commands."
    )
    commands = root.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.add_parser(commands)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; a `CliError` prints ``inferctl: error: <message>`` and exits non-zero."""
    args = parser().parse_args(argv)
    try:
        status: int = args.run(args)
    except CliError as error:
        print(f"inferctl: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("inferctl: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # a bug, but the user still gets one line, never a traceback
        print(f"inferctl: internal error ({type(error).__name__}): {error}", file=sys.stderr)
        return 70
    return status


if __name__ == "__main__":
    sys.exit(main())
