"""``python -m inferflux.operator``: run the operator standalone, with a liveness endpoint.

Settings come from ``INFERFLUX_*`` variables (docs/operator.md); ``--namespace`` overrides
``INFERFLUX_NAMESPACES``. A bad setting exits with status 2 and one readable line.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import sys

import kopf
from kubernetes_asyncio import client

from inferflux.operator.factory import build_operator, kopf_settings
from inferflux.operator.handlers import register
from inferflux.operator.settings import Settings, SettingsError, parse_namespaces, settings_from_env
from inferflux.operator.storage import load_config


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line: namespaces to watch and the log level."""
    parser = argparse.ArgumentParser(prog="python -m inferflux.operator", description=__doc__)
    parser.add_argument(
        "-n", "--namespace", action="append", default=[], help="watch this namespace (repeatable)"
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser.parse_args(argv)


async def run(settings: Settings) -> None:
    """Run until SIGINT/SIGTERM."""
    await load_config()
    async with client.ApiClient() as api:
        ops = build_operator(settings, api)
        registry = kopf.OperatorRegistry()
        register(registry, ops)
        ops.start()
        try:
            await kopf.operator(
                registry=registry,
                settings=kopf_settings(settings),
                standalone=True,
                clusterwide=settings.clusterwide,
                namespaces=list(settings.namespaces),
                liveness_endpoint=f"http://0.0.0.0:{settings.health_port}/healthz",
            )
        finally:
            await ops.stop()


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        settings = settings_from_env(os.environ)
        if args.namespace:
            settings = dataclasses.replace(settings, namespaces=parse_namespaces(args.namespace))
    except (SettingsError, ValueError) as error:
        print(f"inferflux-operator: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("kubernetes_asyncio", "kopf.objects", "aiohttp.access"):  # a line per watch event
        logging.getLogger(noisy).setLevel(logging.WARNING)
    asyncio.run(run(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
