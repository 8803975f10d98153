"""``inferctl batch submit|status|results|cancel``: the router's Batch API (docs/batch.md) from a shell.

``submit FILE`` uploads a JSONL file and creates a batch (``--wait`` follows it with a progress line
until it ends); ``status ID`` prints the batch as JSON; ``results ID`` prints its output file
(``--errors``: its error file); ``cancel ID`` cancels it. The router is ``--url`` (or
``INFERFLUX_URL``) and the credential ``INFERFLUX_API_KEY``. SDK errors become one line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from inferflux.cli.errors import CliError
from inferflux.cli.progress import BAR_WIDTH

DEFAULT_URL = "http://127.0.0.1:8000/v1"
FINAL = frozenset({"completed", "failed", "cancelled", "expired"})


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``batch`` and its actions."""
    parser = commands.add_parser("batch", help="submit and follow OpenAI-style batch jobs")
    parser.add_argument("--url", default=os.environ.get("INFERFLUX_URL", DEFAULT_URL), help="router base URL")
    actions = parser.add_subparsers(metavar="ACTION", required=True)
    submit = actions.add_parser("submit", help="upload a JSONL file and start a batch")
    submit.add_argument("file", type=Path)
    submit.add_argument("--endpoint", default="/v1/chat/completions")
    submit.add_argument("--wait", action="store_true", help="follow the batch until it ends")
    submit.set_defaults(run=run_submit)
    for name, run, text in (
        ("status", run_status, "print a batch"),
        ("results", run_results, "print a batch's output file"),
        ("cancel", run_cancel, "cancel a batch"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument("batch_id")
        if name == "results":
            action.add_argument("--errors", action="store_true", help="the error file instead")
        action.set_defaults(run=run)


def progress_line(batch: dict[str, Any]) -> str:
    """``status [####....] done/total (failed)`` for a batch document (pure)."""
    counts = batch.get("request_counts") or {}
    total, completed, failed = counts.get("total", 0), counts.get("completed", 0), counts.get("failed", 0)
    done = completed + failed
    filled = int(BAR_WIDTH * done / total) if total else 0
    bar = "#" * filled + "." * (BAR_WIDTH - filled)
    return f"{batch['status']:<11} [{bar}] {done}/{total} ({failed} failed)"


def _client(args: argparse.Namespace) -> Any:
    import openai

    return openai.OpenAI(
        base_url=args.url, api_key=os.environ.get("INFERFLUX_API_KEY", "unused"), max_retries=1
    )


def _call(action: Any, *arguments: Any, **options: Any) -> Any:
    import openai

    try:
        return action(*arguments, **options)
    except openai.APIStatusError as error:
        body = error.body if isinstance(error.body, dict) else {}
        message = body.get("message") or str(error)
        raise CliError(f"{error.status_code}: {message}") from None
    except openai.APIConnectionError as error:
        raise CliError(f"cannot reach the router: {error}") from None


def follow(client: Any, batch_id: str, out: TextIO, poll: float = 1.0) -> dict[str, Any]:
    """Poll the batch until it ends, redrawing its progress line; the final batch."""
    while True:
        batch: dict[str, Any] = _call(client.batches.retrieve, batch_id).model_dump()
        line = progress_line(batch)
        out.write(("\r" + line) if out.isatty() else line + "\n")
        out.flush()
        if batch["status"] in FINAL:
            if out.isatty():
                out.write("\n")
            return batch
        time.sleep(poll)


def run_submit(args: argparse.Namespace) -> int:
    try:
        content = args.file.read_bytes()
    except OSError as error:
        raise CliError(f"cannot read {args.file}: {error.strerror}") from None
    client = _client(args)
    uploaded = _call(client.files.create, file=(args.file.name, content), purpose="batch")
    batch = _call(
        client.batches.create, input_file_id=uploaded.id, endpoint=args.endpoint, completion_window="24h"
    )
    print(batch.id)
    if batch.status == "failed":
        for bad in (batch.errors.data if batch.errors else None) or []:
            print(f"line {bad.line}: {bad.code}: {bad.message}", file=sys.stderr)
        return 1
    if args.wait:
        final = follow(client, batch.id, sys.stderr)
        return 0 if final["status"] == "completed" else 1
    return 0


def run_status(args: argparse.Namespace) -> int:
    batch = _call(_client(args).batches.retrieve, args.batch_id)
    print(json.dumps(batch.model_dump(), indent=2))
    return 0


def run_results(args: argparse.Namespace) -> int:
    client = _client(args)
    batch = _call(client.batches.retrieve, args.batch_id)
    file_id = batch.error_file_id if args.errors else batch.output_file_id
    if not file_id:
        raise CliError(
            f"batch {args.batch_id} ({batch.status}) has no {'error' if args.errors else 'output'} file"
        )
    sys.stdout.write(_call(client.files.content, file_id).text)
    return 0


def run_cancel(args: argparse.Namespace) -> int:
    batch = _call(_client(args).batches.cancel, args.batch_id)
    print(batch.status)
    return 0
