"""``python -m inferflux.router``: serve the router with uvicorn (uvloop, httptools), configured from env.

A bad setting, keys file or routing table ends the process with one readable line and exit code 2.
"""

from __future__ import annotations

import logging
import sys

from inferflux.router.app import Router
from inferflux.router.discovery import ConfigMapSource, FileSource, RouteSource, TableError
from inferflux.router.providers import ClusterSecrets, install_redaction
from inferflux.router.resume import KeyringError
from inferflux.router.settings import Settings, SettingsError, from_env


def source_for(settings: Settings) -> RouteSource | None:
    """The routing-table source the settings name: a ConfigMap, a file, or none."""
    if settings.routes_configmap:
        namespace, name = settings.routes_configmap.split("/")
        return ConfigMapSource(namespace, name, settings.kubeconfig)
    if settings.routes_file:
        return FileSource(settings.routes_file, settings.file_poll_seconds)
    return None


def build() -> tuple[Settings, Router]:
    """Settings and router, failing early on bad input (the routes file is read once up front)."""
    settings = from_env()
    source = source_for(settings)
    secrets = ClusterSecrets(settings.kubeconfig) if settings.routes_configmap else None
    install_redaction()  # before any provider key is read
    router = Router(settings, source, secrets=secrets)
    if isinstance(source, FileSource):
        router.holder.swap(source.load())
    return settings, router


def main() -> int:
    """Run until SIGTERM/SIGINT."""
    try:
        settings, router = build()
    except (SettingsError, KeyringError, TableError, OSError) as error:
        print(f"inferflux-router: {error}", file=sys.stderr)
        return 2
    import uvicorn

    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    uvicorn.run(
        router,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level=settings.log_level,
        timeout_graceful_shutdown=30,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
