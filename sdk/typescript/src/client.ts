/**
 * `InferFluxClient`: `infer()` for a whole answer, `stream()` for a resumable stream that reconnects
 * and resumes on its own when the connection drops or stalls past the heartbeat interval. Only `fetch`
 * is used (Node 20+, browsers); for the OpenAI-compatible `/v1` routes use the official `openai` SDK.
 */

import type { Chunk, Done, Inference, InferenceRequest } from "./contract.js";
import { type ReconnectOptions, type ReconnectPolicy, StreamCursor, reconnectPolicy, retryDelay } from "./cursor.js";
import { APIConnectionError, APIError, InferFluxError, errorFrom, retryAfterMs } from "./errors.js";
import { SSEDecoder } from "./sse.js";

export const INFERENCE_PATH = "/api/v1/inference";
export const STREAM_PATH = "/api/v1/inference:stream";

export interface ClientOptions {
  /** The router's base URL, e.g. `https://llm.example.com`. */
  baseUrl: string;
  /** Sent as `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  headers?: Record<string, string>;
  reconnect?: ReconnectOptions;
  /** Another `fetch` (defaults to the global one). */
  fetch?: typeof fetch;
  /** How the client waits between retries (defaults to a timer). */
  sleep?: (ms: number) => Promise<void>;
}

const wait = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function requestId(): string {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

export class InferFluxClient {
  readonly baseUrl: string;
  readonly policy: ReconnectPolicy;
  readonly headers: Record<string, string>;
  readonly fetch: typeof fetch;
  readonly sleep: (ms: number) => Promise<void>;

  constructor(options: ClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.policy = reconnectPolicy(options.reconnect);
    this.headers = { "content-type": "application/json", ...options.headers };
    if (options.apiKey !== undefined) this.headers["authorization"] = `Bearer ${options.apiKey}`;
    this.fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.sleep = options.sleep ?? wait;
  }

  /** POST `body` to `path`; a network failure is an `APIConnectionError`. */
  async post(path: string, body: object, id: string, signal?: AbortSignal): Promise<Response> {
    try {
      return await this.fetch(this.baseUrl + path, {
        method: "POST",
        headers: { ...this.headers, "x-request-id": id },
        body: JSON.stringify(body),
        ...(signal !== undefined ? { signal } : {}),
      });
    } catch (error) {
      if (signal?.aborted === true) throw error;
      throw new APIConnectionError(`no answer from the router: ${String(error)}`, { code: "connection_error" });
    }
  }

  /** The whole answer at once; a refusal with `retry-after` is retried per the policy. */
  async infer(request: InferenceRequest, init: { signal?: AbortSignal } = {}): Promise<Inference> {
    const id = requestId();
    for (let retries = 0; ; retries += 1) {
      const response = await this.post(INFERENCE_PATH, request, id, init.signal);
      if (response.ok) return (await response.json()) as Inference;
      const error = await apiError(response, false);
      const delay = retryDelay(this.policy, error, retries);
      if (delay === undefined) throw error;
      await this.sleep(delay);
    }
  }

  /** A new stream; nothing is sent until it is iterated. */
  stream(request: InferenceRequest, init: { signal?: AbortSignal } = {}): InferenceStream {
    return new InferenceStream(this, request, new StreamCursor(), init.signal);
  }

  /** Continue a stream from a token saved earlier (by this process or another). */
  resume(resumeToken: string, init: { signal?: AbortSignal } = {}): InferenceStream {
    return new InferenceStream(this, {}, new StreamCursor(resumeToken), init.signal);
  }
}

/** The typed error of an error answer. */
export async function apiError(response: Response, resuming: boolean): Promise<APIError> {
  let body: unknown = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  return errorFrom(response.status, body, {
    retryAfterMs: retryAfterMs(response.headers.get("retry-after")),
    requestId: response.headers.get("x-request-id"),
    resuming,
  });
}

class Stalled extends Error {}

/** An async iterable of the chunks of one stream, across as many connections as it takes. */
export class InferenceStream implements AsyncIterable<Chunk> {
  readonly requestId = requestId();

  constructor(
    private readonly client: InferFluxClient,
    private readonly first: object,
    readonly cursor: StreamCursor,
    private readonly signal?: AbortSignal,
  ) {}

  /** The youngest token: hand it to `InferFluxClient.resume` to continue elsewhere or later. */
  get resumeToken(): string | null {
    return this.cursor.resumeToken;
  }

  /** How the stream ended (finish reason, usage), once it has. */
  get done(): Done | null {
    return this.cursor.done;
  }

  /** How many times the stream was resumed on a new connection. */
  get reconnects(): number {
    return this.cursor.reconnects;
  }

  /** Read the rest of the stream and return its text. */
  async text(): Promise<string> {
    let out = "";
    for await (const chunk of this) out += chunk.text;
    return out;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Chunk, void, undefined> {
    const { client, cursor } = this;
    const policy = client.policy;
    let retries = 0;
    while (!cursor.finished) {
      const resuming = cursor.resumeToken !== null;
      const connection = new AbortController();
      const abort = (): void => connection.abort();
      this.signal?.addEventListener("abort", abort, { once: true });
      let cause: unknown = null;
      try {
        const response = await client.post(STREAM_PATH, cursor.request(this.first), this.requestId, connection.signal);
        if (!response.ok) {
          const error = await apiError(response, resuming);
          const delay = retryDelay(policy, error, retries);
          if (delay === undefined) throw error;
          retries += 1;
          await client.sleep(delay);
          continue;
        }
        if (response.body === null) throw new APIConnectionError("a stream answer without a body");
        const reader = response.body.getReader();
        const decoder = new SSEDecoder();
        try {
          for (;;) {
            const { done, value } = await readWithin(reader, policy.stallMs);
            if (done) break;
            for (const { event, data } of decoder.feed(value)) {
              const chunk = cursor.accept(event, data);
              if (chunk !== null) yield chunk;
              if (cursor.finished) return;
            }
          }
        } finally {
          connection.abort(); // also ends the body when the caller stops early
        }
      } catch (error) {
        if (this.signal?.aborted === true) throw error;
        if (error instanceof InferFluxError && !(error instanceof APIConnectionError)) throw error;
        cause = error; // dropped, stalled or refused at the socket: resume
      } finally {
        this.signal?.removeEventListener("abort", abort);
      }
      await client.sleep(cursor.dropped(policy, cause));
    }
  }
}

/** The next read, or `Stalled` when nothing arrives within `ms` (heartbeats arrive well within it). */
async function readWithin(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  ms: number,
): Promise<ReadableStreamReadResult<Uint8Array>> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const stalled = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Stalled(`no byte for ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([reader.read(), stalled]);
  } finally {
    clearTimeout(timer);
  }
}
