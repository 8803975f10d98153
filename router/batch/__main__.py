"""``python -m inferflux.router.batch``: batch workers only, without the public or admin listener.

The same image and settings as the router (``INFERFLUX_*``; ``INFERFLUX_BATCH_DIR`` and
``INFERFLUX_REDIS_URL`` are required): it builds the same request path (routing table, budgets,
guardrails, audit), so tasks are charged and recorded exactly as when a router's own worker runs
them. SIGTERM stops claiming and lets running tasks finish (up to 30 s). A bad setting ends the
process with one readable line and exit code 2.
"""

from __future__ import annotations

import asyncio
import signal
import sys

from inferflux.router.__main__ import Process, StartupError, _first_load, build
from inferflux.router.budgets.pricing import PricingError
from inferflux.router.documents import DocumentError
from inferflux.router.resume import KeyringError
from inferflux.router.settings import SettingsError
from inferflux.router.telemetry import configure_logging


async def work(process: Process) -> None:
    """Run the worker until SIGTERM/SIGINT, then stop it gracefully."""
    assert process.batch is not None
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopped.set)
    await process.router.start()
    await _first_load(process)
    process.budgets.start()
    if process.audit is not None:
        process.audit.start(process.holder)
    process.batch.start()
    try:
        await stopped.wait()
    finally:
        await process.batch.close()
        for task in process.tasks:
            task.cancel()
        await asyncio.gather(*process.tasks, return_exceptions=True)
        await process.router.stop()
        await process.budgets.close()
        await process.store.close()
        if process.audit is not None:
            await process.audit.close()


def main() -> int:
    try:
        process = build()
        if process.batch is None:
            raise StartupError("INFERFLUX_BATCH_DIR is not set: there is no batch queue to work on")
        if process.batch.worker is None:
            raise StartupError("INFERFLUX_BATCH_WORKERS is 0: a worker process needs at least 1")
    except (SettingsError, StartupError, KeyringError, DocumentError, PricingError, OSError) as error:
        print(f"inferflux-batch-worker: {error}", file=sys.stderr)
        return 2
    configure_logging(process.settings.log_level, process.settings.log_format)
    import uvloop

    uvloop.run(work(process))
    return 0


if __name__ == "__main__":
    sys.exit(main())
