/**
 * The state of one resumable stream across connections, and the reconnect policy.
 *
 * `StreamCursor` keeps the youngest resume token and the next offset it expects, so a reconnect resumes
 * exactly after the last chunk handed out: a chunk at an offset already handed out is dropped (never
 * repeated), and a jump forward is a `ProtocolError` (never silently lost).
 */

import type { Chunk, DataEvent, Done, HeartbeatEvent, ResumeEvent } from "./contract.js";
import { APIError, ProtocolError, StreamInterruptedError, errorFrom } from "./errors.js";

/** How a client rides out dropped connections and refusals. */
export interface ReconnectOptions {
  /** Resumes in a row without a new chunk before giving up (default 5). */
  maxReconnects?: number;
  /** First pause between reconnects after an immediate one, doubling (default 200 ms). */
  backoffMs?: number;
  maxBackoffMs?: number;
  /**
   * A connection silent this long counts as dropped and is resumed (default 35 000 ms). Keep it above
   * the router's heartbeat interval (`INFERFLUX_HEARTBEAT_SECONDS`, 15 s by default).
   */
  stallMs?: number;
  /** Retries of a refusal that carries `retry-after` (429, 503), default 2. */
  maxRetries?: number;
  /** A longer `retry-after` than this is not waited for (default 60 000 ms). */
  maxRetryAfterMs?: number;
}

export type ReconnectPolicy = Required<ReconnectOptions>;

export function reconnectPolicy(options: ReconnectOptions = {}): ReconnectPolicy {
  return {
    maxReconnects: 5,
    backoffMs: 200,
    maxBackoffMs: 5000,
    stallMs: 35000,
    maxRetries: 2,
    maxRetryAfterMs: 60000,
    ...options,
  };
}

/** Milliseconds to wait before retrying after `error`, or undefined to give up. */
export function retryDelay(policy: ReconnectPolicy, error: APIError, retries: number): number | undefined {
  if (error.retryAfterMs === undefined || retries >= policy.maxRetries) return undefined;
  return error.retryAfterMs <= policy.maxRetryAfterMs ? error.retryAfterMs : undefined;
}

export class StreamCursor {
  streamId: string | null = null;
  nextOffset: number | null = null;
  done: Done | null = null;
  reconnects = 0;
  private failures = 0;

  constructor(public resumeToken: string | null = null) {}

  get finished(): boolean {
    return this.done !== null;
  }

  /** The body of the next connection: the request itself, or a resume from the youngest token. */
  request(first: object): object {
    return this.resumeToken === null ? first : { resume_token: this.resumeToken };
  }

  /** Take one event; the chunk to hand out, if any. Throws the typed error of an `error` event. */
  accept(event: string, data: unknown): Chunk | null {
    if (event === "error") throw errorFrom(undefined, data);
    if (typeof data !== "object" || data === null) throw new ProtocolError(`${event} event without a JSON object`);
    if (event === "resume") {
      const resume = data as ResumeEvent;
      this.streamId = resume.stream_id;
      this.expect(resume.offset, event);
      this.resumeToken = resume.resume_token;
    } else if (event === "heartbeat") {
      const beat = data as HeartbeatEvent;
      this.expect(beat.offset, event);
      this.resumeToken = beat.resume_token;
    } else if (event === "data") {
      const piece = data as DataEvent;
      if (this.nextOffset !== null && piece.offset < this.nextOffset) return null; // handed out before
      this.expect(piece.offset, event);
      this.nextOffset = piece.offset + 1;
      this.resumeToken = piece.resume_token;
      this.failures = 0;
      return { offset: piece.offset, text: piece.text };
    } else if (event === "done") {
      const done = data as Partial<Done>;
      this.done = { finish_reason: done.finish_reason ?? null, usage: done.usage ?? null };
    }
    return null;
  }

  private expect(offset: number, event: string): void {
    if (this.nextOffset === null) this.nextOffset = offset;
    else if (offset !== this.nextOffset) {
      throw new ProtocolError(`${event} event at offset ${offset}, expected ${this.nextOffset}`);
    }
  }

  /** A connection ended before `done`: the pause (ms) before resuming; throws when out of reconnects. */
  dropped(policy: ReconnectPolicy, cause: unknown): number {
    if (this.resumeToken === null) {
      throw new StreamInterruptedError("the connection dropped before the stream started", {
        code: "stream_interrupted",
      });
    }
    this.failures += 1;
    if (this.failures > policy.maxReconnects) {
      const error = new StreamInterruptedError(
        `the stream could not be resumed after ${policy.maxReconnects} reconnects`,
        { code: "stream_interrupted" },
      );
      error.cause = cause;
      throw error;
    }
    this.reconnects += 1;
    return this.failures <= 1 ? 0 : Math.min(policy.maxBackoffMs, policy.backoffMs * 2 ** (this.failures - 2));
  }
}
