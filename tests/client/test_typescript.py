"""The TypeScript SDK (sdk/typescript, @enis/client): strict type-check and build, then its resume test
under ``node --test`` against the real router and runtime, through proxies that cut or stall streams.

Needs the package's dev dependencies (``make sdk-ts``, part of ``make test``).
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import tarfile

import pytest

from inferflux.client import AsyncInferFlux

pytestmark = pytest.mark.slow

package = importlib.import_module("inferflux_tests_typescript_package")
PACKAGE, run = package.PACKAGE, package.run
REQUEST = {
    "model": "gemma",
    "messages": [{"role": "user", "content": "Name five colours, one per line."}],
    "max_tokens": 32,
    "temperature": 0,
}


async def test_the_typescript_sdk_resumes_a_cut_stream(
    built, runtime_url, make_router, route, cutting_proxy
) -> None:
    assert (built / "index.d.ts").exists()
    assert (built / "react.d.ts").exists()
    harness = await make_router({"gemma": route([runtime_url])}, heartbeat_seconds=0.2)
    async with AsyncInferFlux(harness.url) as client:
        whole = (await client.infer(**REQUEST)).output
    proxy = await cutting_proxy(harness.url, after=3, cuts=1)
    stalling = await cutting_proxy(harness.url, after=2, mode="stall")
    env = {
        **os.environ,
        "INFERFLUX_PROXY_URL": proxy.url,
        "INFERFLUX_STALL_URL": stalling.url,
        "INFERFLUX_ROUTER_URL": harness.url,
        "INFERFLUX_REQUEST": json.dumps(REQUEST),
        "INFERFLUX_EXPECTED": whole,
    }
    code, output = await run("node", "--test", "test/offline.test.mjs", "test/resume.test.mjs", env=env)
    assert code == 0, output
    assert "# pass 8" in output, output  # 3 against the router, 5 offline (cursor, errors, SSE)
    assert "# fail 0" in output, output
    assert proxy.broken == 1
    assert stalling.broken == 1


CONSUMER = """
import { InferFluxClient, InvalidResumeTokenError, type Chunk, type VoiceUplinkFrame } from "@enis/client";
import { useVoice, useXR, type VoiceHook } from "@enis/client/react";

const client = new InferFluxClient({ baseUrl: "http://127.0.0.1:1", apiKey: "k" });
export async function first(): Promise<Chunk | undefined> {
  for await (const chunk of client.stream({ model: "m", prompt: "hi" })) return chunk;
  return undefined;
}
export const frame: VoiceUplinkFrame = { type: "audio", codec: "opus", seq: 0, payload: null, ts: 0 };
export const hooks: [typeof useVoice, typeof useXR] = [useVoice, useXR];
export type Hook = VoiceHook;
export const typed: boolean = new InvalidResumeTokenError("x") instanceof Error;
"""
WRONG = """
import type { VoiceUplinkFrame } from "@enis/client";
export const frame: VoiceUplinkFrame = { type: "video", codec: "opus", seq: 0, payload: null, ts: 0 };
"""


async def test_npm_pack_gives_a_package_a_strict_consumer_type_checks_and_imports(built, tmp_path) -> None:
    npm = shutil.which("npm")
    assert npm
    code, output = await run(npm, "pack", "--silent", "--pack-destination", str(tmp_path))
    assert code == 0, output
    tarball = tmp_path / output.strip().splitlines()[-1]
    with tarfile.open(tarball) as archive:
        names = archive.getnames()
        archive.extractall(tmp_path / "unpacked", filter="data")
    assert "package/dist/index.d.ts" in names
    assert "package/dist/react.js" in names
    assert not [name for name in names if "/src/" in name or "node_modules" in name or "/test/" in name]
    manifest = json.loads((tmp_path / "unpacked" / "package" / "package.json").read_text())
    assert manifest["name"] == "@enis/client"
    assert "dependencies" not in manifest  # nothing at run time beyond fetch and WebSocket
    assert manifest["peerDependencies"] == {"react": ">=18"}

    consumer = tmp_path / "consumer"
    (consumer / "node_modules" / "@enis").mkdir(parents=True)
    (tmp_path / "unpacked" / "package").rename(consumer / "node_modules" / "@enis" / "client")
    (consumer / "node_modules" / "@types").symlink_to(PACKAGE / "node_modules" / "@types")
    (consumer / "package.json").write_text('{"type": "module"}')
    (consumer / "main.ts").write_text(CONSUMER)
    tsc = str(PACKAGE / "node_modules" / ".bin" / "tsc")
    flags = ["--strict", "--noEmit", "--module", "nodenext", "--target", "es2022", "--lib", "es2022,dom"]
    code, output = await run(tsc, *flags, "main.ts", cwd=consumer)
    assert code == 0, output
    (consumer / "main.ts").write_text(WRONG)
    code, output = await run(tsc, *flags, "main.ts", cwd=consumer)
    assert code != 0
    assert '"video"' in output
    script = (
        "import('@enis/client').then((sdk) => console.log(typeof sdk.InferFluxClient, sdk.XR_PATHS.socket))"
    )
    code, output = await run("node", "--input-type=module", "-e", script, cwd=consumer)
    assert code == 0, output
    assert output.split() == ["function", "/api/v1/xr/ws"]
