"""``python -m inferflux.runtime``: verify the model, load it, and serve the OpenAI API."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

import uvicorn

from inferflux.router.telemetry import configure_logging, uninstall
from inferflux.router.telemetry.settings import TraceSettingsError
from inferflux.runtime import telemetry
from inferflux.runtime.admin import EngineShape, Swapper, read_token
from inferflux.runtime.embeddings import Embedder
from inferflux.runtime.engine import Engine
from inferflux.runtime.integrity import integrity_problem, signature_problem
from inferflux.runtime.memory import process_rss, read_memory, within_budget
from inferflux.runtime.metrics import RuntimeMetrics
from inferflux.runtime.model import Model, ModelLoadError
from inferflux.runtime.server import create_app
from inferflux.runtime.serving import Runtime, Serving
from inferflux.runtime.settings import parse_settings

log = logging.getLogger("inferflux.runtime")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the server until it is stopped; a non-zero exit with one log line when it cannot serve."""
    settings = parse_settings(argv)
    configure_logging(logging.INFO, settings.log_format)
    try:  # off unless an OTLP endpoint is set (docs/observability.md)
        telemetry.setup()
    except TraceSettingsError as exc:
        log.error("%s", exc)
        return 2
    # The signature first: it says which digest is trusted, then the file must have that digest.
    problem = signature_problem(
        settings.model_sha256, settings.model_signature, settings.model_public_key_file
    ) or integrity_problem(settings.model_path, settings.model_sha256)
    if problem:
        log.error(problem)
        return 2
    try:
        model = Model(settings.model_path, settings.gpu_layers)
    except ModelLoadError as exc:
        log.error("%s", exc)
        return 3
    threads = settings.effective_threads
    metrics = RuntimeMetrics()
    engine = Engine(
        model,
        context_size=settings.context_size,
        parallel=settings.parallel,
        threads=threads,
        batch_size=settings.batch_size,
        metrics=metrics,
    )
    embedder = Embedder(model, min(settings.context_size, 2048), threads)
    serving = Serving.of(model, engine, embedder, settings.model_id)
    runtime = Runtime(
        serving,
        metrics,
        lambda: within_budget(read_memory(), settings.memory_limit, process_rss()),
        settings.headroom_factor,
        settings.default_system_prompt,
    )
    routes = []
    if settings.admin_token_file:
        try:
            token = read_token(settings.admin_token_file)
        except (OSError, ValueError) as exc:
            log.error("cannot read the admin token: %s", exc)
            return 4
        shape = EngineShape(settings.context_size, settings.parallel, threads, settings.batch_size)
        routes = Swapper(runtime, shape, token, settings.model_public_key_file).routes()
    log.info(
        "serving %s on %s:%d with %d sequences",
        settings.model_id,
        settings.host,
        settings.port,
        settings.parallel,
    )
    try:
        uvicorn.run(
            create_app(runtime, routes),
            host=settings.host,
            port=settings.port,
            loop="uvloop",
            http="httptools",
            access_log=False,
            log_level="warning",
            timeout_graceful_shutdown=10,
        )
    finally:
        runtime.serving.close()
        uninstall()  # exports the kept traces still queued
    return 0


if __name__ == "__main__":
    sys.exit(main())
