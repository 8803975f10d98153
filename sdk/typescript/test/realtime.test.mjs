// The voice and XR clients against the router's real realtime endpoints and the real runtime, driven
// by tests/client/test_typescript_realtime.py: INFERFLUX_ROUTER_URL is the router (model `gemma`),
// INFERFLUX_SPEECH a file of PCM16 mono 16 kHz audio (flite saying "what is your name", with
// silence around it). Node 20 has no global WebSocket: the `ws` package (a dev dependency) stands in.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import WebSocket from "ws";

import {
  AuthenticationError,
  InferFluxClient,
  InvalidResumeTokenError,
  RateLimitError,
  VoiceClient,
  XRClient,
  openSession,
} from "../dist/index.js";

const env = (name) => {
  const value = process.env[name];
  assert.ok(value !== undefined, `${name} is not set: run this from tests/client/test_typescript_realtime.py`);
  return value;
};
const baseUrl = env("INFERFLUX_ROUTER_URL");
const FRAME_BYTES = 640; // 20 ms of PCM16 at 16 kHz
// Each test is bounded, and closes its clients however it ends (an open socket would keep Node alive).
const LIMIT = { timeout: 120_000 };

/** A WebSocket class that remembers the sockets it opened, so that a test can drop one. */
function recordingSockets() {
  const opened = [];
  class Socket extends WebSocket {
    delivered = 0; // messages handed to the client
    cut = false;
    constructor(url, protocols) {
      super(url, protocols);
      opened.push(this);
    }
    /** Drop the connection as the network does: no close frame (1006), and frames in flight are lost. */
    drop() {
      this.cut = true;
      this.terminate();
    }
    get onmessage() {
      return super.onmessage;
    }
    set onmessage(handler) {
      super.onmessage = (event) => {
        if (this.cut) return;
        this.delivered += 1;
        handler(event);
      };
    }
  }
  return { Socket, opened };
}

const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Poll `condition` every 10 ms until it holds; fails after `within` ms. */
async function until(condition, what, within = 120_000) {
  const deadline = Date.now() + within;
  while (!condition()) {
    assert.ok(Date.now() < deadline, `no ${what} within ${within} ms`);
    await pause(10);
  }
}

test("voice: spoken audio gets partial, final and metrics frames, whole across a dropped connection", LIMIT, async (t) => {
  const { Socket, opened } = recordingSockets();
  const voice = new VoiceClient({ baseUrl, session: { model: "gemma", max_tokens: 24, temperature: 0 }, WebSocket: Socket });
  t.after(() => voice.close());
  const frames = [];
  let framesAtDrop = null;
  voice.onFrame((frame) => {
    frames.push(frame);
    if (frame.type === "partial" && framesAtDrop === null) {
      framesAtDrop = frames.length;
      opened[0].drop(); // mid-answer: the rest must come through the resumed connection
    }
  });
  await voice.connect();
  assert.equal(voice.state, "open");
  assert.ok(voice.sessionId && voice.resumeToken);

  const pcm = readFileSync(env("INFERFLUX_SPEECH"));
  for (let at = 0; at < pcm.length && framesAtDrop === null; at += FRAME_BYTES) {
    // An answer starts only after the end of the utterance: what is left unsent is trailing silence.
    assert.ok(voice.sendAudio(pcm.subarray(at, at + FRAME_BYTES).toString("base64")), "the socket is open");
    await pause(5); // the router allows 100 frames a second in bursts of 100
  }
  await until(() => frames.some((frame) => frame.type === "metrics") || voice.state === "closed", "metrics frame");
  assert.equal(voice.error, null);

  assert.ok(framesAtDrop !== null && frames.length > framesAtDrop);
  assert.ok(opened[1].delivered > 0, "frames came through the resumed connection");
  assert.equal(voice.reconnects, 1);
  assert.equal(opened.length, 2);
  assert.equal(voice.closeCode, 1006);
  const seqs = frames.map((frame) => frame.seq);
  assert.deepEqual(seqs, seqs.map((_, index) => index + 1)); // none lost, none repeated
  const kinds = frames.map((frame) => frame.type).filter((type) => type === "partial" || type === "final");
  assert.equal(kinds[0], "partial");
  assert.equal(kinds.at(-1), "final");
  const final = frames.find((frame) => frame.type === "final");
  const pieces = frames.filter((frame) => frame.type === "partial").map((frame) => frame.text);
  assert.equal(final.text, pieces.join(""));
  assert.ok(final.text.trim().length > 0);
  assert.equal(final.transcript, "what is your name"); // PocketSphinx's reading of the words
  const metrics = frames.at(-1);
  assert.equal(metrics.type, "metrics");
  assert.equal(metrics.turn, final.turn);
  assert.equal(metrics.endpoint, "vad");
  assert.ok(metrics.completion_tokens > 0);
  voice.close();
  assert.equal(voice.state, "closed");
});

test("voice: a spent or made-up ticket is closed with 4401, an AuthenticationError, not retried", LIMIT, async (t) => {
  const http = new InferFluxClient({ baseUrl });
  const session = await openSession(http, "voice", { model: "gemma" });
  const { session_id, resume_token, ticket } = session;
  const owner = new VoiceClient({ baseUrl, session: { session_id, resume_token, ticket }, WebSocket });
  t.after(() => owner.close());
  await owner.connect(); // spends the ticket
  for (const wrong of [ticket, "made-up"]) {
    const { Socket, opened } = recordingSockets();
    const refused = new VoiceClient({ baseUrl, session: { session_id, resume_token, ticket: wrong }, WebSocket: Socket });
    await assert.rejects(refused.connect(), (error) => {
      assert.ok(error instanceof AuthenticationError, `got ${error}`);
      assert.equal(error.code, "auth");
      assert.equal(refused.error, error);
      return true;
    });
    assert.equal(refused.closeCode, 4401);
    assert.equal(refused.state, "closed");
    assert.equal(opened.length, 1); // no reconnect
  }
  assert.equal(owner.state, "open"); // the refusals did not touch the session's connection
  const forged = new VoiceClient({ baseUrl, session: { session_id, resume_token: "x".repeat(43) }, WebSocket });
  await assert.rejects(forged.connect(), InvalidResumeTokenError);
  assert.equal(forged.closeCode, null); // refused over HTTP, before any socket
  owner.close();
});

test("xr: observations reach the session and are fused into the answer; a bad frame gets bad_frame", LIMIT, async (t) => {
  const xr = new XRClient({ baseUrl, session: { model: "gemma", max_tokens: 8, temperature: 0 }, WebSocket });
  t.after(() => xr.close());
  const frames = [];
  xr.onFrame((frame) => frames.push(frame));
  await xr.connect();
  for (let index = 0; index < 20; index += 1) {
    const sent =
      index % 2 === 0
        ? xr.sendObservation("pose", { x: index / 10, y: 1.6, z: 0, yaw: index })
        : xr.sendObservation("gaze", { target: `anchor:lamp-${index}` });
    assert.ok(sent);
  }
  xr.send({ type: "teleport", data: {}, ts: Date.now() }); // not in the contract
  await until(() => frames.length > 0, "error frame", 30_000);
  assert.deepEqual(frames, [frames[0]]);
  assert.equal(frames[0].type, "error");
  assert.equal(frames[0].code, "bad_frame");
  assert.equal(frames[0].seq, 1);

  const pieces = [];
  const answer = await xr.ask("What am I looking at?", (text) => pieces.push(text));
  assert.equal(answer.context.frames, 20); // every good frame, and only those
  assert.equal(typeof answer.context.jitter_p99_ms, "number");
  assert.ok(pieces.length > 0);
  assert.equal(answer.text, pieces.join(""));
  assert.equal(xr.state, "open");
  xr.close();
});

test("xr: over the frame rate the router closes with 1008, a RateLimitError; the session can be resumed", LIMIT, async (t) => {
  const { Socket, opened } = recordingSockets();
  const xr = new XRClient({ baseUrl, session: { model: "gemma" }, WebSocket: Socket });
  t.after(() => xr.close());
  await xr.connect();
  for (let index = 0; index < 1000; index += 1) assert.ok(xr.sendObservation("pose", { x: index }));
  await until(() => xr.state === "closed", "close", 30_000);
  assert.equal(xr.closeCode, 1008);
  assert.ok(xr.error instanceof RateLimitError, `got ${xr.error}`);
  assert.equal(opened.length, 1); // a refusal is not retried

  const again = new XRClient({ baseUrl, session: { session_id: xr.sessionId, resume_token: xr.resumeToken }, WebSocket });
  t.after(() => again.close());
  await again.connect();
  assert.equal(again.state, "open");
  assert.equal(again.sessionId, xr.sessionId);
  again.close();
});
