/**
 * WebSocket clients for the voice and XR endpoints: JSON frames up and down, reconnect with backoff
 * when the socket closes unexpectedly. Uses the global `WebSocket` (browsers, Node 22+) or the one
 * given in the options (for Node 20, e.g. the `ws` package). The endpoints are frozen by the seeds but
 * not served by the router yet; until they are, these clients type the contract and nothing is tested
 * against a server. Browsers cannot set headers on a WebSocket, so how a credential travels on these
 * sockets is left to `protocols` (sub-protocols) until the endpoints define it.
 */

import type {
  VoiceCodec,
  VoiceDownlinkFrame,
  VoiceUplinkFrame,
  XRDownlinkFrame,
  XRUplinkFrame,
  XRUplinkType,
} from "./frames.js";
import { VOICE_PATHS, XR_PATHS } from "./frames.js";
import { InferFluxError } from "./errors.js";

export type WebSocketLike = Pick<WebSocket, "send" | "close" | "readyState"> & {
  onopen: ((event: Event) => void) | null;
  onclose: ((event: CloseEvent) => void) | null;
  onmessage: ((event: MessageEvent) => void) | null;
  onerror: ((event: Event) => void) | null;
};

export type WebSocketFactory = new (url: string, protocols?: string | string[]) => WebSocketLike;

export interface RealtimeOptions {
  /** The router's base URL (http or https; turned into ws or wss). */
  baseUrl: string;
  protocols?: string[];
  /** A WebSocket class, when there is no global one. */
  WebSocket?: WebSocketFactory;
  /** Reconnects in a row before giving up (default 5); 0 disables reconnecting. */
  maxReconnects?: number;
  backoffMs?: number;
}

export type RealtimeState = "idle" | "connecting" | "open" | "reconnecting" | "closed";

/** A JSON-framed WebSocket that reconnects on its own; `Up` goes out, `Down` comes in. */
export class RealtimeSocket<Up extends object, Down extends { type: string }> {
  state: RealtimeState = "idle";
  private socket: WebSocketLike | null = null;
  private failures = 0;
  private readonly listeners = new Set<(frame: Down) => void>();
  private readonly stateListeners = new Set<(state: RealtimeState) => void>();

  constructor(
    private readonly options: RealtimeOptions,
    private readonly path: string,
  ) {}

  get url(): string {
    return this.options.baseUrl.replace(/^http/, "ws").replace(/\/+$/, "") + this.path;
  }

  /** Open the socket (again). */
  connect(): void {
    const Factory = this.options.WebSocket ?? (globalThis.WebSocket as unknown as WebSocketFactory | undefined);
    if (Factory === undefined) throw new InferFluxError("no WebSocket available: pass options.WebSocket");
    this.setState(this.failures === 0 ? "connecting" : "reconnecting");
    const socket = new Factory(this.url, this.options.protocols);
    this.socket = socket;
    socket.onopen = () => {
      this.failures = 0;
      this.setState("open");
    };
    socket.onmessage = (event: MessageEvent) => {
      const frame = JSON.parse(String(event.data)) as Down;
      for (const listener of this.listeners) listener(frame);
    };
    socket.onclose = () => {
      if (this.state === "closed") return;
      this.failures += 1;
      if (this.failures > (this.options.maxReconnects ?? 5)) {
        this.setState("closed");
        return;
      }
      const delay = Math.min(5000, (this.options.backoffMs ?? 200) * 2 ** (this.failures - 1));
      this.setState("reconnecting");
      setTimeout(() => this.state === "reconnecting" && this.connect(), delay);
    };
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

  /** Close for good (no reconnect). */
  close(): void {
    this.setState("closed");
    this.socket?.close();
    this.socket = null;
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
    super(options, VOICE_PATHS.socket);
  }

  /** Send audio (or a control message) with the next sequence number and the current time. */
  sendAudio(payload: unknown, codec: VoiceCodec = "pcm16", type: "audio" | "control" = "audio"): boolean {
    const sent = this.send({ type, codec, seq: this.seq, payload, ts: Date.now() });
    if (sent) this.seq += 1;
    return sent;
  }
}

/** The XR uplink (`WS /api/v1/xr/ws`): pose, gaze, gestures and voice activity. */
export class XRClient extends RealtimeSocket<XRUplinkFrame, XRDownlinkFrame> {
  constructor(options: RealtimeOptions) {
    super(options, XR_PATHS.socket);
  }

  /** Send one observation stamped with the current time. */
  sendObservation(type: XRUplinkType, data: Record<string, unknown>): boolean {
    return this.send({ type, data, ts: Date.now() });
  }
}
