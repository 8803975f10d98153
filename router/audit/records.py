"""What an audit line holds, and the one canonical way to write it.

Each line of a segment is one JSON object: an envelope the log adds (``chain``, ``seq``, ``prev``)
and a body whose ``kind`` says what happened: a ``request`` the router served, an ``admin`` action,
a signed ``checkpoint`` of the chain head, a ``set_aside`` of a torn line found at start, or a
``pruned`` anchor after retention removed old segments.

Lines are canonical JSON (orjson, keys sorted, no whitespace), so a line's SHA-256 is stable and a
verifier can rebuild the exact bytes a checkpoint signed. ``prev`` is the SHA-256 of the previous
line's bytes; the first record of a chain points at `GENESIS`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

FORMAT = 1
GENESIS = "0" * 64
CHAIN_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$"


class Body(BaseModel):
    """Base of every record body: a kind and a UTC time."""

    model_config = ConfigDict(extra="forbid")

    kind: str
    time: dt.datetime


class Verdict(BaseModel):
    """One guardrail outcome as the guardrails report it: direction, check, what it concerned (an
    entity type or rule name, never a value), the action taken and how many times."""

    model_config = ConfigDict(extra="ignore")

    direction: str = ""
    check: str
    subject: str = ""
    action: str
    count: int = 1


class RequestRecord(Body):
    """One inference request as the router answered it."""

    kind: Literal["request"] = "request"
    request_id: str
    receipt: str | None = Field(default=None, description="The x-inferflux-receipt the response carried.")
    tenant: str | None = None
    credential: str | None = Field(default=None, description="api_key, jwt or certificate.")
    key_id: str | None = Field(default=None, description="The API key's id (never the key); None for others.")
    route: str
    model: str | None = None
    upstream: str | None = None
    status: int
    error: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_micros: int | None = Field(default=None, description="Settled cost, micro-units of the currency.")
    latency_ms: float
    verdicts: list[Verdict] = Field(default_factory=list)
    prompt_hmac: str | None = Field(default=None, description="HMAC-SHA-256 of the prompt, per tenant.")
    prompt_text: str | None = Field(
        default=None, description="Redacted prompt; only when the tenant opts in."
    )


class AdminRecord(Body):
    """One admin API call: who (key id, or the bootstrap token), what, on which tenant, with which status."""

    kind: Literal["admin"] = "admin"
    request_id: str
    actor: str
    actor_tenant: str | None = None
    method: str
    path: str
    tenant: str | None = Field(default=None, description="The tenant the action concerns, if any.")
    status: int


class Checkpoint(Body):
    """A signature over the chain head: this line's envelope (chain, seq, prev) and body, minus ``sig``."""

    kind: Literal["checkpoint"] = "checkpoint"
    key_id: str
    sig: str = ""


class SetAside(Body):
    """A torn tail found at start, moved to ``moved_to`` rather than accepted or silently dropped."""

    kind: Literal["set_aside"] = "set_aside"
    segment: str
    offset: int
    length: int
    sha256: str
    moved_to: str


class Pruned(Body):
    """Retention removed whole segments up to and including ``through_seq`` (see anchor.json)."""

    kind: Literal["pruned"] = "pruned"
    through_seq: int
    through_hash: str
    segments: list[str]


def canonical(entry: dict[str, Any]) -> bytes:
    """The canonical bytes of a JSON object: keys sorted, no whitespace, UTF-8."""
    return orjson.dumps(entry, option=orjson.OPT_SORT_KEYS)


def line_hash(line: bytes) -> str:
    """The hash a successor's ``prev`` names: SHA-256 of the line's bytes, without its newline."""
    return hashlib.sha256(line).hexdigest()


def entry_of(body: Body, chain: str, seq: int, prev: str) -> dict[str, Any]:
    """The JSON object of one line: the body's fields (None left out) and the envelope."""
    entry = body.model_dump(mode="json", exclude_none=True)
    entry["v"] = FORMAT
    entry["chain"] = chain
    entry["seq"] = seq
    entry["prev"] = prev
    return entry


def signed_part(entry: dict[str, Any]) -> bytes:
    """What a checkpoint's signature covers: its canonical bytes without ``sig``."""
    return canonical({name: value for name, value in entry.items() if name != "sig"})
