"""The admin API's view of the batch queue: the dead-lettered tasks (admin credential required)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, Query

from inferflux.router.admin.app import PREFIX
from inferflux.router.batch.queue import BatchQueue


def add_admin_routes(app: FastAPI, queue: BatchQueue) -> None:
    """``GET /admin/v1/batch/dead-letters``: the latest dead-lettered tasks, newest first.

    Added to the admin application after it is built, so its app-wide admin check applies.
    """

    @app.get(f"{PREFIX}/batch/dead-letters", tags=["batch"])
    async def dead_letters(limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
        return {"object": "list", "data": await queue.dead_letters(limit)}
