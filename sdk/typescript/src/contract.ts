/** The router's `/api/v1/inference` contract (docs/openapi.yaml), as types. */

export interface Message {
  role: "system" | "user" | "assistant" | "tool";
  content: string;
}

/** A generation request: `messages` (chat) or `prompt` (plain completion), not both. */
export interface InferenceRequest {
  model: string;
  messages?: Message[];
  prompt?: string;
  max_tokens?: number;
  temperature?: number;
  top_p?: number;
  stop?: string[];
  seed?: number;
  /** A managed prompt (`id` or `id@version`) put in front of `messages`. */
  prompt_id?: string;
  variables?: Record<string, unknown>;
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

/** The whole answer of `POST /api/v1/inference`. */
export interface Inference {
  id: string;
  model: string;
  output: string;
  finish_reason: string | null;
  usage: Usage | null;
}

/** One piece of streamed output: its position in the stream and its text. */
export interface Chunk {
  offset: number;
  text: string;
}

/** How a stream ended normally (`event: done`). */
export interface Done {
  finish_reason: string | null;
  usage: Usage | null;
}

/** `event: resume`, sent first on every connection. */
export interface ResumeEvent {
  stream_id: string;
  offset: number;
  resume_token: string;
}

/** `event: data`. */
export interface DataEvent {
  offset: number;
  text: string;
  resume_token: string;
}

/** `event: heartbeat`: sent every `INFERFLUX_HEARTBEAT_SECONDS` (15 s by default) with a fresh token. */
export interface HeartbeatEvent {
  offset: number;
  resume_token: string;
}
