/**
 * Frame types of the voice and XR endpoints, as frozen by the seeds (sprint S6f; served by S16 and S17).
 *
 * Voice: `WS /api/v1/voice/ws` (uplink audio and control), `POST /api/v1/voice:stream` (SSE out),
 * `POST /api/v1/voice/session`. XR: `WS /api/v1/xr/ws` (gaze, pose, gestures, VAD),
 * `POST /api/v1/xr:stream` (SSE out), `POST /api/v1/xr/session`. The seeds fix the fields below and
 * nothing more: payloads they leave open are typed `unknown` until the endpoints land.
 */

export type VoiceCodec = "pcm16" | "opus";

/** Voice, client to server (`/api/v1/voice/ws`). */
export interface VoiceUplinkFrame {
  type: "audio" | "control";
  codec: VoiceCodec;
  /** Per-connection sequence number, from 0. */
  seq: number;
  payload: unknown;
  /** Milliseconds since the epoch when the frame was captured. */
  ts: number;
}

export type VoiceDownlinkType = "partial" | "final" | "barge_in" | "metrics" | "error";

/** Voice, server to client: the seeds fix `type`; the other fields are not frozen yet. */
export interface VoiceDownlinkFrame {
  type: VoiceDownlinkType;
  [field: string]: unknown;
}

export type XRUplinkType = "pose" | "gaze" | "gesture" | "voice_vad";

/** XR, client to server (`/api/v1/xr/ws`). */
export interface XRUplinkFrame {
  type: XRUplinkType;
  data: Record<string, unknown>;
  ts: number;
}

/** XR, server to client: not fixed by the seeds; `type` is the only field the SDK relies on. */
export interface XRDownlinkFrame {
  type: string;
  [field: string]: unknown;
}

export const VOICE_PATHS = {
  socket: "/api/v1/voice/ws",
  stream: "/api/v1/voice:stream",
  session: "/api/v1/voice/session",
} as const;

export const XR_PATHS = {
  socket: "/api/v1/xr/ws",
  stream: "/api/v1/xr:stream",
  session: "/api/v1/xr/session",
} as const;
