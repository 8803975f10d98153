"""The TypeScript SDK's voice and XR clients (sdk/typescript/src/realtime.ts) against the router's
realtime endpoints and the real runtime: ``node --test test/realtime.test.mjs`` in sdk/typescript,
given the router's URL and a file of real speech (flite, as in tests/router/realtime).

Voice: spoken PCM16 frames through the VAD and PocketSphinx to the model, the connection dropped at
the first ``partial`` and resumed by the client with a new ticket, every frame once; a spent or
made-up ticket closed with 4401 (``AuthenticationError``), a forged resume token refused. XR: pose
and gaze frames counted and fused into ``ask()``'s answer, a bad frame answered with ``bad_frame``,
and a flood closed with 1008 (``RateLimitError``) with the session still resumable. Needs the
package's dev dependencies (``make sdk-ts``).
"""

from __future__ import annotations

import asyncio
import importlib
import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

package = importlib.import_module("inferflux_tests_typescript_package")
speech = importlib.import_module("inferflux_tests_speech")


async def test_the_voice_and_xr_clients_against_the_real_router(
    built: Path, runtime_url: str, make_router, route, tmp_path: Path
) -> None:
    assert (built / "realtime.d.ts").exists()
    harness = await make_router({"gemma": route([runtime_url])})
    spoken = tmp_path / "what-is-your-name.pcm"
    spoken.write_bytes(speech.silence(300) + speech.speak_pcm16("what is your name") + speech.silence(700))
    env = {**os.environ, "INFERFLUX_ROUTER_URL": harness.url, "INFERFLUX_SPEECH": str(spoken)}
    code, output = await package.run("node", "--test", "test/realtime.test.mjs", env=env)
    assert code == 0, output
    assert "# pass 4" in output, output
    assert "# fail 0" in output, output
    # The router's side: one session per client (the reconnect re-admitted its session rather than
    # opening another), each left to linger for a resume once the clients closed their sockets.
    sessions = harness.router.realtime.sessions._sessions
    assert sorted(session.kind for session in sessions.values()) == ["voice", "voice", "xr", "xr"]
    deadline = asyncio.get_running_loop().time() + 10
    while any(session.connection for session in sessions.values()):
        assert asyncio.get_running_loop().time() < deadline, "a socket the client closed is still attached"
        await asyncio.sleep(0.05)
