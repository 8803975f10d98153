"""``inferctl up``: InferFlux on this machine, from the same YAML that goes to a cluster.

It starts the router, then a runtime process per replica of each InferenceModel in the given files
or folders (default: docs/examples/local), prints the endpoint with ready-to-paste snippets, follows
the files for edits, and on Ctrl-C (or SIGTERM) stops every process it started. Tenants in the same
files become the router's policy snapshot.

On 127.0.0.1 the router runs with auth off unless ``--auth`` is given, and the banner says so in
capitals; another address with auth off is refused unless ``--allow-open`` says it is meant.
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
from inferflux.operator.local.auth import ExposureError, LocalAuth
from inferflux.operator.local.launcher import Launcher
from inferflux.operator.local.paths import model_dir
from inferflux.operator.local.plan import needs_runtime
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
    parser.add_argument(
        "--auth",
        action="store_true",
        help="require API keys (generates the hashing secret and an admin token in the run folder)",
    )
    parser.add_argument(
        "--allow-open",
        action="store_true",
        help="serve a non-loopback --host with auth off (INSECURE: anyone who reaches it uses every model)",
    )
    parser.add_argument(
        "--admin-port", type=int, default=8001, help="admin API port on 127.0.0.1 (default: 8001)"
    )
    parser.set_defaults(run=run)


def say(line: str) -> None:
    """Progress goes to stderr, so that stdout holds only the banner."""
    print(f"inferctl up: {line}", file=sys.stderr, flush=True)


def auth_lines(url: str, auth: LocalAuth, admin_token: Path | None) -> list[str]:
    """How the router is protected, or loudly that it is not."""
    if not auth.enabled:
        return [
            f"!!! AUTH IS OFF: anyone who can reach {url} may use every model, with no API key. !!!",
            "!!! Fine on this machine alone; run `inferctl up --auth` to require keys.          !!!",
            "",
        ]
    admin = f"http://127.0.0.1:{auth.admin_port}"
    return [
        "Auth is on: every request needs an API key of a tenant.",
        f"  admin API: {admin}  (bearer token in {admin_token}; make keys with `inferctl admin`)",
        "",
    ]


def banner(
    url: str,
    models: list[InferenceModel],
    watching: list[Path] | None,
    auth: LocalAuth | None = None,
    admin_token: Path | None = None,
) -> str:
    """What to paste next: auth, the endpoint, a curl and an openai SDK snippet, and the chat command."""
    auth = auth or LocalAuth(enabled=False)
    served = [m.served_name for m in models]
    first = served[0] if served else "MODEL"
    request = {"model": first, "stream": True, "messages": [{"role": "user", "content": "Hello!"}]}
    key_header = ' -H "Authorization: Bearer $INFERFLUX_API_KEY"' if auth.enabled else ""
    api_key = 'os.environ["INFERFLUX_API_KEY"]' if auth.enabled else '"local"'
    lines = [
        *auth_lines(url, auth, admin_token),
        f"InferFlux is up: {url}/v1  (models: {', '.join(served) or 'none'})",
        "",
        "  curl:",
        f"    curl -N {url}/v1/chat/completions -H 'Content-Type: application/json'{key_header} \\",
        f"      -d '{json.dumps(request)}'",
        "",
        "  python (openai SDK):",
        "    from openai import OpenAI" + ("; import os" if auth.enabled else ""),
        f'    client = OpenAI(base_url="{url}/v1", api_key={api_key})',
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
    auth = LocalAuth(enabled=args.auth, allow_open=args.allow_open, admin_port=args.admin_port)
    _interrupt_on_sigterm()
    launcher = Launcher(
        args.run_dir, model_dir(), args.host, args.port, say, secrets=args.secrets_dir, auth=auth
    )
    try:
        try:
            launcher.start_router(resources.tenants)
        except ExposureError as error:
            raise CliError(str(error)) from None
        except StartError as error:
            raise CliError(f"the router did not start: {error}") from None
        say(f"router ready on {launcher.url}")
        if not auth.enabled:
            say(f"AUTH IS OFF: anyone who can reach {launcher.url} may use every model")
        seen = fingerprint(paths)
        if not apply_files(launcher, paths):
            raise CliError("the models and tenants could not all be applied; see the lines above")
        first = next((m for m in launcher.models if needs_runtime(m)), None)
        if first is not None and not auth.enabled:
            try:
                seconds = launcher.first_answer(first.served_name)
            except StartError as error:
                raise CliError(str(error)) from None
            say(f"{first.served_name} answered through the router in {seconds:.1f}s")
        token = auth.admin_token_file(args.run_dir).resolve() if auth.enabled else None
        watching = None if args.no_watch else paths
        print(banner(launcher.url, launcher.models, watching, auth, token), flush=True)
        follow(launcher, paths, seen, keep_going=lambda: not args.no_watch)
        if args.no_watch:
            signal.pause()
    except KeyboardInterrupt:
        say("stopping")
    finally:
        launcher.stop()
    say("stopped")
    return 0
