/**
 * WebSocket clients for the voice and XR endpoints (docs/realtime.md in the InferFlux repository).
 *
 * Browsers cannot set headers on a WebSocket, so a session is created (or re-admitted) over HTTP with
 * the caller's credentials, and the answer carries a ticket good for one connection, which the socket
 * presents as `?ticket=`. When a connection drops (no close frame, 1011 or 1013) the client asks for a
 * new ticket with the session's resume token and reads on after the last `seq` it got, so a server
 * frame is neither lost nor repeated. A refusal (4401, 4404, 4409, 1003, 1008, 1009) ends the client
 * with a typed error instead. Uses the global `WebSocket` (browsers, Node 22+) or the one given in the
 * options (Node 20: e.g. the `ws` package).
 */

import { InferFluxClient, apiError } from "./client.js";
import {
  APIConnectionError,
  type APIError,
  AuthenticationError,
  BadRequestError,
  ConflictError,
  type ErrorDetails,
  InferFluxError,
  InputTooLargeError,
  NotFoundError,
  RateLimitError,
  StreamInterruptedError,
  errorFrom,
} from "./errors.js";
import type {
  VoiceCodec,
  VoiceDownlinkFrame,
  VoiceUplinkFrame,
  XRDownlinkFrame,
  XRUplinkFrame,
  XRUplinkType,
} from "./frames.js";
import { VOICE_PATHS, XR_PATHS } from "./frames.js";
import { SSEDecoder } from "./sse.js";

export type WebSocketLike = Pick<WebSocket, "send" | "close" | "readyState"> & {
  onopen: ((event: Event) => void) | null;
  onclose: ((event: CloseEvent) => void) | null;
  onmessage: ((event: MessageEvent) => void) | null;
  onerror: ((event: Event) => void) | null;
};

export type WebSocketFactory = new (url: string, protocols?: string | string[]) => WebSocketLike;

export type RealtimeKind = "voice" | "xr";

/**
 * A new session of `model`; `variables` fill the managed `voice` or `xr` prompt, and `temperature`
 * (0 to 2, 0 greedy) samples every answer of the session; unset, the model's default.
 */
export interface NewSession {
  model: string;
  max_tokens?: number;
  temperature?: number;
  variables?: Record<string, unknown>;
}

/**
 * A session created elsewhere, say by the application's backend (which holds the API key) for a
 * browser: its id and resume token, its first ticket when there is one, and the last `seq` already read.
 */
export interface ExistingSession {
  session_id: string;
  resume_token: string;
  ticket?: string;
  after?: number;
}

/** The answer of `POST /api/v1/{voice,xr}/session`. */
export interface SessionTicket {
  session_id: string;
  resume_token: string;
  /** Good for one connection, for `ticket_expires_in` seconds. */
  ticket: string;
  ticket_expires_in: number;
  ws_path: string;
  last_seq: number;
}

export interface RealtimeOptions {
  /** The router's base URL (http or https; turned into ws or wss). */
  baseUrl: string;
  /** Sent as `Authorization: Bearer <apiKey>` on the session requests (never on the socket). */
  apiKey?: string;
  headers?: Record<string, string>;
  /** Another `fetch` for the session requests (defaults to the global one). */
  fetch?: typeof fetch;
  /** The session to open: a new one, or one to re-admit. */
  session: NewSession | ExistingSession;
  protocols?: string[];
  /** A WebSocket class, when there is no global one. */
  WebSocket?: WebSocketFactory;
  /** Reconnects in a row before giving up (default 5); 0 disables reconnecting. */
  maxReconnects?: number;
  backoffMs?: number;
}

export type RealtimeState = "idle" | "connecting" | "open" | "reconnecting" | "closed";

/**
 * `POST /api/v1/{kind}/session`: create a session, or re-admit one with its resume token. A refusal is
 * the typed error of the answer (a wrong resume token: `InvalidResumeTokenError`).
 */
export async function openSession(
  client: InferFluxClient,
  kind: RealtimeKind,
  request: NewSession | Pick<ExistingSession, "session_id" | "resume_token">,
): Promise<SessionTicket> {
  const path = kind === "voice" ? VOICE_PATHS.session : XR_PATHS.session;
  const response = await client.post(path, request, newRequestId());
  if (!response.ok) throw await apiError(response, "resume_token" in request);
  return (await response.json()) as SessionTicket;
}

function newRequestId(): string {
  return crypto.randomUUID().replaceAll("-", "");
}

type APIErrorClass = new (message: string, details?: ErrorDetails) => APIError;

/** Close codes that refuse the connection: no reconnect, this error (and error code) instead. */
const REFUSALS: Record<number, [APIErrorClass, string]> = {
  1003: [BadRequestError, "bad_request"],
  1008: [RateLimitError, "rate_limited"],
  1009: [InputTooLargeError, "input_too_large"],
  4401: [AuthenticationError, "auth"],
  4404: [NotFoundError, "not_found"],
  4409: [ConflictError, "conflict"],
};
/** Close codes that end the connection on purpose: the client closed or said `bye`, or the router is stopping. */
const ENDINGS = new Set([1000, 1001]);

/** A JSON-framed realtime socket on a session that reconnects on its own; `Up` goes out, `Down` comes in. */
export class RealtimeSocket<Up extends object, Down extends { type: string }> {
  state: RealtimeState = "idle";
  /** Known once the session exists. */
  sessionId: string | null = null;
  resumeToken: string | null = null;
  /** The last server frame received (`seq`); a reconnect reads on after it. */
  lastSeq = 0;
  /** New connections after the first (each with a new ticket). */
  reconnects = 0;
  /** The code the last connection closed with. */
  closeCode: number | null = null;
  /** Why the client closed, when it was not `close()`. */
  error: InferFluxError | null = null;
  protected readonly http: InferFluxClient;
  private socket: WebSocketLike | null = null;
  private ticket: string | null = null;
  private failures = 0;
  private waiting: { resolve: () => void; reject: (error: InferFluxError) => void } | null = null;
  private readonly listeners = new Set<(frame: Down) => void>();
  private readonly stateListeners = new Set<(state: RealtimeState) => void>();

  constructor(
    private readonly options: RealtimeOptions,
    readonly kind: RealtimeKind,
  ) {
    this.http = new InferFluxClient({
      baseUrl: options.baseUrl,
      ...(options.apiKey !== undefined ? { apiKey: options.apiKey } : {}),
      ...(options.headers !== undefined ? { headers: options.headers } : {}),
      ...(options.fetch !== undefined ? { fetch: options.fetch } : {}),
    });
    const session = options.session;
    if ("session_id" in session) {
      this.sessionId = session.session_id;
      this.resumeToken = session.resume_token;
      this.ticket = session.ticket ?? null;
      this.lastSeq = session.after ?? 0;
    }
  }

  /** The socket's URL with `ticket` (and `after`, the last frame read). */
  socketUrl(ticket: string): string {
    const path = this.kind === "voice" ? VOICE_PATHS.socket : XR_PATHS.socket;
    const base = this.options.baseUrl.replace(/^http/, "ws").replace(/\/+$/, "");
    return `${base}${path}?ticket=${encodeURIComponent(ticket)}&after=${this.lastSeq}`;
  }

  /**
   * Open the session and its socket; resolves once the router said `ready`, rejects with the typed
   * error of a refusal (also kept in `error`).
   */
  connect(): Promise<void> {
    if (this.waiting !== null) throw new InferFluxError("connect() is already under way");
    this.failures = 0;
    this.error = null;
    const ready = new Promise<void>((resolve, reject) => {
      this.waiting = { resolve, reject };
    });
    void this.attach();
    return ready;
  }

  /** Send one frame; false when the socket is not open (the frame is not queued). */
  send(frame: Up): boolean {
    if (this.socket === null || this.state !== "open") return false;
    this.socket.send(JSON.stringify(frame));
    return true;
  }

  /** Listen to incoming frames; returns the function that stops listening. */
  onFrame(listener: (frame: Down) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  onState(listener: (state: RealtimeState) => void): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  /** Close for good (no reconnect); the session waits on the router for a resume (docs/realtime.md). */
  close(): void {
    const socket = this.socket;
    this.socket = null;
    this.end(null);
    socket?.close(1000);
  }

  /** One connection: a ticket (given, or asked for), then the socket. */
  private async attach(): Promise<void> {
    this.setState(this.failures === 0 ? "connecting" : "reconnecting");
    let ticket: string;
    try {
      ticket = this.ticket ?? (await this.newTicket());
    } catch (error) {
      if (error instanceof APIConnectionError && this.sessionId !== null) this.dropped();
      else this.end(error instanceof InferFluxError ? error : new InferFluxError(String(error)));
      return;
    }
    this.ticket = null; // spent by this connection
    if (this.state === "closed") return;
    const Factory = this.options.WebSocket ?? (globalThis.WebSocket as unknown as WebSocketFactory | undefined);
    if (Factory === undefined) {
      this.end(new InferFluxError("no WebSocket available: pass options.WebSocket"));
      return;
    }
    const socket = new Factory(this.socketUrl(ticket), this.options.protocols);
    this.socket = socket;
    socket.onerror = () => undefined; // a close event follows; some implementations throw unheard errors
    socket.onmessage = (event: MessageEvent) => {
      if (this.socket === socket) this.receive(JSON.parse(String(event.data)) as Down & { seq?: number });
    };
    socket.onclose = (event: CloseEvent) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.closeCode = event.code;
      const refusal = REFUSALS[event.code];
      const reason = event.reason ? `: ${event.reason}` : "";
      if (refusal !== undefined) {
        const [Kind, code] = refusal;
        this.end(new Kind(`the router closed the ${this.kind} socket with ${event.code}${reason}`, { code }));
      } else if (ENDINGS.has(event.code)) {
        this.end(null);
      } else {
        this.dropped();
      }
    };
  }

  private async newTicket(): Promise<string> {
    const request =
      this.sessionId !== null && this.resumeToken !== null
        ? { session_id: this.sessionId, resume_token: this.resumeToken }
        : (this.options.session as NewSession);
    const answer = await openSession(this.http, this.kind, request);
    this.sessionId = answer.session_id;
    this.resumeToken = answer.resume_token;
    return answer.ticket;
  }

  private receive(frame: Down & { seq?: number }): void {
    if (frame.type === "ready") {
      this.failures = 0;
      this.setState("open");
      this.waiting?.resolve();
      this.waiting = null;
      return;
    }
    if (typeof frame.seq === "number") {
      if (frame.seq <= this.lastSeq) return; // already handed out before a reconnect
      this.lastSeq = frame.seq;
    }
    for (const listener of this.listeners) listener(frame);
  }

  /** The connection was lost: reconnect with backoff, or give up after `maxReconnects` in a row. */
  private dropped(): void {
    if (this.state === "closed") return;
    this.failures += 1;
    const most = this.options.maxReconnects ?? 5;
    if (this.failures > most || this.sessionId === null) {
      this.end(new StreamInterruptedError(`the ${this.kind} socket dropped and ${most} reconnects failed`));
      return;
    }
    const delay = Math.min(5000, (this.options.backoffMs ?? 200) * 2 ** (this.failures - 1));
    this.setState("reconnecting");
    setTimeout(() => {
      if (this.state !== "reconnecting") return;
      this.reconnects += 1;
      void this.attach();
    }, delay);
  }

  /** Closed for good, with `error` unless it was asked for. */
  private end(error: InferFluxError | null): void {
    if (this.state === "closed") return;
    this.error = error;
    this.setState("closed");
    this.waiting?.reject(error ?? new InferFluxError(`the ${this.kind} socket closed before it was ready`));
    this.waiting = null;
  }

  private setState(state: RealtimeState): void {
    this.state = state;
    for (const listener of this.stateListeners) listener(state);
  }
}

/** The voice uplink (`WS /api/v1/voice/ws`): numbered audio and control frames. */
export class VoiceClient extends RealtimeSocket<VoiceUplinkFrame, VoiceDownlinkFrame> {
  private seq = 0;

  constructor(options: RealtimeOptions) {
    super(options, "voice");
  }

  /** Send audio (or a control message) with the next sequence number and the current time. */
  sendAudio(payload: unknown, codec: VoiceCodec = "pcm16", type: "audio" | "control" = "audio"): boolean {
    const sent = this.send({ type, codec, seq: this.seq, payload, ts: Date.now() });
    if (sent) this.seq += 1;
    return sent;
  }
}

/** What `XRClient.ask` answers: the whole text, and what the session's spatial stream looked like. */
export interface XRAnswer {
  text: string;
  context: { frames: number; jitter_p99_ms: number | null };
}

/** The XR uplink (`WS /api/v1/xr/ws`): pose, gaze, gestures and voice activity. */
export class XRClient extends RealtimeSocket<XRUplinkFrame, XRDownlinkFrame> {
  constructor(options: RealtimeOptions) {
    super(options, "xr");
  }

  /** Send one observation stamped with the current time. */
  sendObservation(type: XRUplinkType, data: Record<string, unknown>): boolean {
    return this.send({ type, data, ts: Date.now() });
  }

  /**
   * Ask about the scene (`POST /api/v1/xr:stream`): the answer with the session's latest samples fused
   * in; `onPartial` gets each piece as it streams. Heartbeats are skipped; a refusal is its typed error.
   */
  async ask(question: string, onPartial?: (text: string) => void): Promise<XRAnswer> {
    if (this.sessionId === null) throw new InferFluxError("ask() needs a session: connect() first");
    const response = await this.http.post(XR_PATHS.stream, { session_id: this.sessionId, question }, newRequestId());
    if (!response.ok) throw await apiError(response, false);
    if (response.body === null) throw new APIConnectionError("an answer without a body");
    const reader = response.body.getReader();
    const decoder = new SSEDecoder();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        for (const { event, data } of decoder.feed(value)) {
          if (event === "partial") onPartial?.(String((data as { text?: unknown }).text ?? ""));
          else if (event === "final") return data as XRAnswer;
          else if (event === "error") throw errorFrom(undefined, data);
        }
      }
    } finally {
      reader.releaseLock();
    }
    throw new APIConnectionError("the answer ended before its final event");
  }
}
