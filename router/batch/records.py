"""A batch as stored (a flat Redis hash) and as OpenAI shows it; the lines of its output files.

Statuses follow OpenAI's: a batch is created ``in_progress`` (validation runs before it is created;
a file with bad lines gives a ``failed`` batch listing them in ``errors``), becomes ``cancelling``
when cancelled, ``finalizing`` while its output files are written, then ``completed``,
``cancelled`` or ``expired``. ``request_counts`` count the tasks that completed (2xx) and failed.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import orjson

TERMINAL = frozenset({"completed", "failed", "cancelled", "expired"})
_STAMPS = (
    "in_progress_at",
    "expires_at",
    "finalizing_at",
    "completed_at",
    "failed_at",
    "expired_at",
    "cancelling_at",
    "cancelled_at",
)


def new_batch_id() -> str:
    """A fresh, unguessable batch id."""
    return "batch_" + secrets.token_hex(12)


def output_file_id(batch_id: str, kind: str) -> str:
    """The id of a batch's output (``out``) or error (``err``) file: fixed by the batch id, so a
    finaliser that runs twice writes the same file twice instead of two files."""
    return f"file-{kind}-{batch_id.removeprefix('batch_')}"


def request_id(batch_id: str, custom_id: str) -> str:
    """The request id a task runs under: the budget's idempotency key and the backend's x-request-id."""
    return f"{batch_id}:{custom_id}"


@dataclass(frozen=True, slots=True)
class Owner:
    """Who created a batch: the tenant, and the credential (kind, subject) it used."""

    tenant: str
    kind: str = ""
    subject: str = ""


def new_record(
    batch_id: str,
    owner: Owner,
    endpoint: str,
    input_file_id: str,
    metadata: dict[str, str] | None,
    now: int,
    window_seconds: int,
    total: int,
) -> dict[str, str]:
    """The Redis hash of a batch that starts now with ``total`` tasks."""
    return {
        "id": batch_id,
        "tenant": owner.tenant,
        "owner_kind": owner.kind,
        "owner_subject": owner.subject,
        "endpoint": endpoint,
        "input_file_id": input_file_id,
        "completion_window": "24h",
        "metadata": orjson.dumps(metadata).decode(),
        "status": "in_progress",
        "created_at": str(now),
        "in_progress_at": str(now),
        "expires_at": str(now + window_seconds),
        "total": str(total),
        "remaining": str(total),
        "completed": "0",
        "failed": "0",
        "dead_lettered": "0",
    }


def failed_record(base: dict[str, str], errors: list[dict[str, Any]], now: int) -> dict[str, str]:
    """The hash of a batch refused by validation: ``failed``, its bad lines in ``errors``."""
    return {
        **base,
        "status": "failed",
        "failed_at": str(now),
        "errors": orjson.dumps(errors).decode(),
        "remaining": "0",
    }


def _stamp(record: dict[str, str], name: str) -> int | None:
    value = record.get(name)
    return int(value) if value else None


def document(record: dict[str, str]) -> dict[str, Any]:
    """OpenAI's ``Batch`` object for a stored record."""
    errors = record.get("errors")
    shown: dict[str, Any] = {
        "id": record["id"],
        "object": "batch",
        "endpoint": record["endpoint"],
        "errors": {"object": "list", "data": orjson.loads(errors)} if errors else None,
        "input_file_id": record["input_file_id"],
        "completion_window": record["completion_window"],
        "status": record["status"],
        "output_file_id": record.get("output_file_id") or None,
        "error_file_id": record.get("error_file_id") or None,
        "created_at": int(record["created_at"]),
        "request_counts": {
            "total": int(record["total"]),
            "completed": int(record.get("completed", 0)),
            "failed": int(record.get("failed", 0)),
        },
        "metadata": orjson.loads(record.get("metadata") or "null"),
    }
    for name in _STAMPS:
        shown[name] = _stamp(record, name)
    return shown


def output_line(batch_id: str, custom_id: str, status: int, body: Any) -> dict[str, Any]:
    """A line of the output (2xx) or error (other status) file for an answered request."""
    return {
        "id": "batch_req_" + secrets.token_hex(12),
        "custom_id": custom_id,
        "response": {"status_code": status, "request_id": request_id(batch_id, custom_id), "body": body},
        "error": None,
    }


def error_line(custom_id: str, code: str, message: str) -> dict[str, Any]:
    """A line of the error file for a request that got no answer (dead-lettered, expired)."""
    return {
        "id": "batch_req_" + secrets.token_hex(12),
        "custom_id": custom_id,
        "response": None,
        "error": {"code": code, "message": message},
    }
