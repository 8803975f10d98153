// The TypeScript SDK against the real router and runtime, driven by tests/client/test_typescript.py:
// INFERFLUX_PROXY_URL is a TCP proxy in front of the router that cuts the first connection after a
// few events, INFERFLUX_STALL_URL one that stalls it (the router sends heartbeats every 0.2 s);
// INFERFLUX_ROUTER_URL is the router itself (model `cold` has no replica); INFERFLUX_EXPECTED is the whole answer.
import assert from "node:assert/strict";
import { test } from "node:test";

import { InferFluxClient, InvalidResumeTokenError } from "../dist/index.js";

const env = (name) => {
  const value = process.env[name];
  assert.ok(value !== undefined, `${name} is not set: run this from tests/client/test_typescript.py`);
  return value;
};
const request = JSON.parse(env("INFERFLUX_REQUEST"));

test("a stream cut mid-way is resumed with no chunk lost or repeated", async () => {
  const client = new InferFluxClient({ baseUrl: env("INFERFLUX_PROXY_URL"), reconnect: { stallMs: 20000 } });
  const stream = client.stream(request);
  const offsets = [];
  let text = "";
  for await (const chunk of stream) {
    offsets.push(chunk.offset);
    text += chunk.text;
  }
  assert.equal(text, env("INFERFLUX_EXPECTED"));
  assert.deepEqual(offsets, offsets.map((_, index) => index));
  assert.ok(stream.reconnects >= 1, "the proxy cut the connection, so the stream was resumed");
  assert.notEqual(stream.done, null);
});

test("a stalled stream counts as dropped past the heartbeat interval and is resumed", async () => {
  const client = new InferFluxClient({ baseUrl: env("INFERFLUX_STALL_URL"), reconnect: { stallMs: 1000 } });
  const stream = client.stream(request);
  assert.equal(await stream.text(), env("INFERFLUX_EXPECTED"));
  assert.equal(stream.reconnects, 1);
});

test("a forged resume token is an InvalidResumeTokenError", async () => {
  const client = new InferFluxClient({ baseUrl: env("INFERFLUX_ROUTER_URL") });
  const honest = client.stream(request);
  for await (const _ of honest) break; // one chunk is enough to hold a real token
  const [kid, stream, offset, expires, signature] = honest.resumeToken.split(".");
  const forged = [kid, stream, offset, expires, signature.slice(0, -2) + (signature.endsWith("AA") ? "BB" : "AA")];
  await assert.rejects(client.resume(forged.join(".")).text(), (error) => {
    assert.ok(error instanceof InvalidResumeTokenError, `got ${error}`);
    assert.equal(error.status, 401);
    return true;
  });
  const expired = [kid, stream, offset, "1", signature].join("."); // signature no longer matches: forged
  await assert.rejects(client.resume(expired).text(), InvalidResumeTokenError);
});
