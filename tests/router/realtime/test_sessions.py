"""Sessions: the numbered, bounded outbox, ownership, resume tokens and expiry."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from inferflux.crds.tenant import Scope
from inferflux.router.identity.principal import Principal
from inferflux.router.realtime.sessions import Fallen, Outbox, SessionStore


def principal(tenant: str) -> Principal:
    return Principal(tenant, "api_key", "k", frozenset({Scope.INFERENCE}), None)


def test_the_outbox_numbers_frames_and_reads_after_a_seq() -> None:
    outbox = Outbox(limit=3)
    for text in "abcd":
        outbox.put("partial", text=text)
    assert [seq for seq, _ in outbox.after(2)] == [3, 4]
    assert orjson.loads(outbox.after(3)[0][1]) == {"type": "partial", "seq": 4, "text": "d"}
    assert outbox.after(4) == []
    with pytest.raises(Fallen):  # seq 1 went to make room: a reader after 0 lost it
        outbox.after(0)


async def test_a_reader_waits_for_the_next_frame() -> None:
    outbox = Outbox(limit=8)
    reader = asyncio.ensure_future(outbox.wait_after(0, 5.0))
    await asyncio.sleep(0)
    outbox.put("final", text="x")
    assert [seq for seq, _ in await reader] == [1]
    assert await outbox.wait_after(1, 0.01) == []


def test_sessions_belong_to_a_tenant_and_prove_their_token() -> None:
    store = SessionStore(max_sessions=2, linger=60, outbox_frames=8)
    first = store.create("voice", principal("alpha"), "m", {})
    assert first is not None
    assert first.owned_by(principal("alpha"))
    assert not first.owned_by(principal("beta"))
    assert not first.owned_by(None)
    assert first.proves(first.resume_token)
    assert not first.proves(first.resume_token[:-1] + "x")
    assert store.create("xr", None, "m", {}) is not None
    assert store.create("xr", None, "m", {}) is None  # the limit


def test_a_session_without_a_connection_expires_and_runs_its_close_callbacks() -> None:
    store = SessionStore(max_sessions=4, linger=10, outbox_frames=8)
    session = store.create("voice", None, "m", {})
    assert session is not None
    closed: list[str] = []
    session.on_close.append(lambda: closed.append(session.id))
    assert session.detached_at is not None
    store.expire(now=session.detached_at + 5)
    assert store.get(session.id) is session
    session.connection, session.detached_at = 1, None  # attached: never expires
    store.expire(now=1e12)
    assert store.get(session.id) is session
    session.connection, session.detached_at = 0, 0.0
    store.expire(now=11.0)
    assert store.get(session.id) is None
    assert closed == [session.id]
