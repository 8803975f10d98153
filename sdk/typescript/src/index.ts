/** `@enis/client`: InferFlux's resumable inference streams, typed errors, and voice/XR clients. */

export * from "./client.js";
export * from "./contract.js";
export { type ReconnectOptions, type ReconnectPolicy, StreamCursor, reconnectPolicy } from "./cursor.js";
export * from "./errors.js";
export * from "./frames.js";
export * from "./realtime.js";
export { SSEDecoder, type SSEEvent } from "./sse.js";
