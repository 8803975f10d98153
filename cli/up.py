"""``inferctl up``: InferFlux on this machine, from the same YAML that goes to a cluster.

It starts the router, then a runtime process per replica of each InferenceModel in the given files
or folders (default: docs/examples/local), prints the endpoint with ready-to-paste snippets, follows
the files for edits, and on Ctrl-C (or SIGTERM) stops every process it started.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from types import FrameType

from inferflux.cli.errors import CliError
from inferflux.crds.inferencemodel import InferenceModel
from inferflux.operator.local.launcher import Launcher
from inferflux.operator.local.paths import model_dir
from inferflux.operator.local.process import StartError
from inferflux.operator.local.resources import ResourceError, load
from inferflux.operator.local.watch import apply_files, fingerprint, follow

DEFAULT_FOLDER = Path("docs/examples/local")


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``up``."""
    parser = commands.add_parser(
        "up",
        help="run the router and the models' runtimes locally, no cluster",
        description="Serve InferenceModel YAML on this machine behind the router. Ctrl-C stops everything.",
    )
    parser.add_argument(
        "paths", nargs="*", type=Path, help=f"YAML files or folders (default: {DEFAULT_FOLDER})"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="router port (default: 8000)")
    parser.add_argument("--run-dir", type=Path, default=Path(".cache/local"), help="routes file and logs")
    parser.add_argument(
        "--secrets-dir",
        type=Path,
        default=Path(".cache/secrets"),
        help="Secret keys as <dir>/<name>/<key>: signing public keys, provider API keys",
    )
    parser.add_argument("--no-watch", action="store_true", help="do not follow the files for changes")
    parser.set_defaults(run=run)


def say(line: str) -> None:
    """Progress goes to stderr, so that stdout holds only the banner."""
    print(f"inferctl up: {line}", file=sys.stderr, flush=True)


def banner(url: str, models: list[InferenceModel], watching: list[Path] | None) -> str:
    """What to paste next: the endpoint, a curl and an openai SDK snippet, and the chat command."""
    served = [m.served_name for m in models]
    first = served[0] if served else "MODEL"
    request = {"model": first, "stream": True, "messages": [{"role": "user", "content": "Hello!"}]}
    lines = [
        f"InferFlux is up: {url}/v1  (models: {', '.join(served) or 'none'})",
        "",
        "  curl:",
        f"    curl -N {url}/v1/chat/completions -H 'Content-Type: application/json' \\",
        f"      -d '{json.dumps(request)}'",
        "",
        "  python (openai SDK):",
        "    from openai import OpenAI",
        f'    client = OpenAI(base_url="{url}/v1", api_key="local")',
        f'    for chunk in client.chat.completions.create(model="{first}", stream=True,',
        '            messages=[{"role": "user", "content": "Hello!"}]):',
        '        print(chunk.choices[0].delta.content or "", end="", flush=True)',
        "",
        f"  chat:  inferctl chat --interactive --url {url}/v1",
        "",
    ]
    if watching:
        lines.append(f"Watching {', '.join(map(str, watching))} for changes. Ctrl-C stops everything.")
    else:
        lines.append("Ctrl-C stops everything.")
    return "\n".join(lines)


def _interrupt_on_sigterm() -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)
    # A shell starting us in the background (`inferctl up &`) ignores SIGINT; Ctrl-C must still stop us.
    signal.signal(signal.SIGINT, signal.default_int_handler)


def run(args: argparse.Namespace) -> int:
    """Bring the stack up, serve until interrupted, then stop it all."""
    paths: list[Path] = args.paths or [DEFAULT_FOLDER]
    try:
        resources = load(paths)  # refuse bad YAML before starting anything
    except ResourceError as error:
        raise CliError(str(error)) from None
    if not resources.models:
        raise CliError(f"no InferenceModel in {', '.join(map(str, paths))}")
    _interrupt_on_sigterm()
    launcher = Launcher(args.run_dir, model_dir(), args.host, args.port, say, secrets=args.secrets_dir)
    try:
        try:
            launcher.start_router()
        except StartError as error:
            raise CliError(f"the router did not start: {error}") from None
        say(f"router ready on {launcher.url}")
        seen = fingerprint(paths)
        if not apply_files(launcher, paths):
            raise CliError("the models could not all be started; see the lines above")
        print(banner(launcher.url, launcher.models, None if args.no_watch else paths), flush=True)
        follow(launcher, paths, seen, keep_going=lambda: not args.no_watch)
        if args.no_watch:
            signal.pause()
    except KeyboardInterrupt:
        say("stopping")
    finally:
        launcher.stop()
    say("stopped")
    return 0
