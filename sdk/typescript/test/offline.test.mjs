// The stream cursor, the error mapping and the SSE decoder on their own (no server needed).
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  GuardrailBlockedError,
  InvalidResumeTokenError,
  ProtocolError,
  SSEDecoder,
  QuotaExceededError,
  RateLimitError,
  StreamCursor,
  StreamGoneError,
  StreamInterruptedError,
  errorFrom,
  reconnectPolicy,
} from "../dist/index.js";

const data = (offset) => ({ offset, text: `t${offset}`, resume_token: `k.${offset + 1}` });

test("chunks already handed out are dropped after a resume, a gap is a ProtocolError", () => {
  const cursor = new StreamCursor();
  cursor.accept("resume", { stream_id: "s", offset: 0, resume_token: "k.0" });
  assert.deepEqual(cursor.accept("data", data(0)), { offset: 0, text: "t0" });
  assert.deepEqual(cursor.accept("data", data(1)), { offset: 1, text: "t1" });
  assert.equal(cursor.resumeToken, "k.2");
  assert.equal(cursor.accept("data", data(1)), null);
  assert.throws(() => cursor.accept("data", data(3)), ProtocolError);
});

test("an error event throws its typed error; done ends the stream", () => {
  const cursor = new StreamCursor("k.0");
  const body = { error: { message: "no", type: "invalid_request_error", param: null, code: "guardrail_blocked" } };
  assert.throws(() => cursor.accept("error", body), GuardrailBlockedError);
  cursor.accept("done", { finish_reason: "stop", usage: null });
  assert.equal(cursor.finished, true);
});

test("reconnects are bounded and back off", () => {
  const policy = reconnectPolicy({ maxReconnects: 3, backoffMs: 100 });
  assert.throws(() => new StreamCursor().dropped(policy, null), StreamInterruptedError);
  const cursor = new StreamCursor("k.0");
  assert.deepEqual([1, 2, 3].map(() => cursor.dropped(policy, null)), [0, 100, 200]);
  assert.throws(() => cursor.dropped(policy, null), StreamInterruptedError);
});

test("errors map by code, then by status; resume answers by status", () => {
  const body = (code) => ({ error: { message: "m", type: "t", param: null, code } });
  assert.ok(errorFrom(429, body("insufficient_quota")) instanceof QuotaExceededError);
  assert.ok(errorFrom(429, body("insufficient_quota")) instanceof RateLimitError);
  assert.ok(errorFrom(401, body("auth"), { resuming: true }) instanceof InvalidResumeTokenError);
  assert.ok(errorFrom(410, body("not_found"), { resuming: true }) instanceof StreamGoneError);
  const limited = errorFrom(429, null, { retryAfterMs: 2000 });
  assert.ok(limited instanceof RateLimitError);
  assert.equal(limited.retryAfterMs, 2000);
});

test("events split at every byte decode the same, CRLF and multi-byte characters included", () => {
  const text =
    'event: resume\ndata: {"stream_id":"ab","offset":0,"resume_token":"t0"}\n\n' +
    'id: 0\r\nevent: data\r\ndata: {"offset":0,"text":"caf\u00e9","resume_token":"t1"}\r\n\r\n' +
    ': comment\nevent: done\ndata: {"finish_reason":"stop","usage":null}\n\n';
  const bytes = new TextEncoder().encode(text);
  const expected = [
    { event: "resume", data: { stream_id: "ab", offset: 0, resume_token: "t0" } },
    { event: "data", data: { offset: 0, text: "caf\u00e9", resume_token: "t1" } },
    { event: "done", data: { finish_reason: "stop", usage: null } },
  ];
  for (let cut = 0; cut <= bytes.length; cut += 1) {
    const decoder = new SSEDecoder();
    assert.deepEqual([...decoder.feed(bytes.slice(0, cut)), ...decoder.feed(bytes.slice(cut))], expected);
  }
});
