"""The admin API lists dead-lettered tasks, behind the admin credential."""

from __future__ import annotations

from typing import Any

import httpx

from inferflux.router.admin.app import create_app
from inferflux.router.admin.auth import AdminAuth
from inferflux.router.admin.service import AdminService
from inferflux.router.batch.admin import add_admin_routes
from inferflux.router.batch.queue import BatchQueue
from inferflux.router.batch.records import Owner, new_record
from inferflux.router.batch.validation import Task
from inferflux.router.policy.effective import PolicyHolder
from inferflux.router.policy.store import MemoryPolicyStore

TOKEN = "admin-token-" + "x" * 40


async def test_dead_letters_are_listed_for_admins_only(redis: Any) -> None:
    queue = BatchQueue.from_url(redis.url)
    await queue.ensure_group()
    record = new_record("batch_1", Owner("t"), "/v1/chat/completions", "file-x", None, 1, 10**10, 1)
    await queue.create(record, [Task(1, "c", "m", b"{}")], "/v1/chat/completions", 0)
    [delivery] = await queue.read("w", 1, 100)
    dead = {"batch_id": "batch_1", "custom_id": "c", "attempts": 3, "last_status": 503}
    await queue.complete(delivery, {"error": {"code": "max_attempts_exceeded"}}, "failed", dead)
    holder = PolicyHolder()
    app = create_app(
        AdminService(holder, MemoryPolicyStore(holder), None, None), AdminAuth(holder, None, TOKEN)
    )
    add_admin_routes(app, queue)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://admin") as client:
        refused = await client.get("/admin/v1/batch/dead-letters")
        assert refused.status_code == 401
        answer = await client.get(
            "/admin/v1/batch/dead-letters", headers={"authorization": f"Bearer {TOKEN}"}
        )
    assert answer.status_code == 200
    [entry] = answer.json()["data"]
    assert (entry["batch_id"], entry["custom_id"], entry["attempts"]) == ("batch_1", "c", 3)
    await queue.close()
