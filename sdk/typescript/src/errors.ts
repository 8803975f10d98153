/**
 * Typed errors: one class per normalised error code the router answers with.
 *
 * The router answers every failure in the OpenAI shape `{"error": {"message", "type", "param", "code"}}`
 * with `code` from a fixed vocabulary (docs/router.md); `errorFrom` picks the matching class so that
 * callers use `instanceof RateLimitError` rather than comparing strings.
 */

export interface ErrorDetails {
  code?: string;
  status?: number | undefined;
  param?: string | null | undefined;
  retryAfterMs?: number | undefined;
  requestId?: string | null | undefined;
}

/** Any failure the SDK reports; `code` is the router's error code, or the SDK's own. */
export class InferFluxError extends Error {
  readonly code: string;
  readonly status: number | undefined;
  readonly param: string | null;
  /** How long the router asked to wait (`retry-after`), in milliseconds. */
  readonly retryAfterMs: number | undefined;
  readonly requestId: string | null;

  constructor(message: string, details: ErrorDetails = {}) {
    super(message);
    this.name = new.target.name;
    this.code = details.code ?? "unknown";
    this.status = details.status;
    this.param = details.param ?? null;
    this.retryAfterMs = details.retryAfterMs;
    this.requestId = details.requestId ?? null;
  }
}

/** The router answered with an error (an HTTP status, or an `error` event mid-stream). */
export class APIError extends InferFluxError {}
/** `bad_request`: the request itself is wrong. */
export class BadRequestError extends APIError {}
/** `content_filtered`. */
export class ContentFilteredError extends BadRequestError {}
/** `context_length`: the prompt and answer do not fit the model's context. */
export class ContextLengthError extends BadRequestError {}
/** `guardrail_blocked`: a tenant guardrail refused the input or the output. */
export class GuardrailBlockedError extends BadRequestError {}
/** `input_too_large`. */
export class InputTooLargeError extends BadRequestError {}
/** `auth` or `invalid_token`: a missing, malformed, expired or revoked credential. */
export class AuthenticationError extends APIError {}
/** A resume token the router did not sign (forged, or signed with a retired key): 401. */
export class InvalidResumeTokenError extends AuthenticationError {}
/** `insufficient_scope`. */
export class PermissionDeniedError extends APIError {}
/** `not_found`. */
export class NotFoundError extends APIError {}
/** A stream that can no longer be resumed (410): its token expired or it left the replay buffer. */
export class StreamGoneError extends NotFoundError {}
/** `conflict`. */
export class ConflictError extends APIError {}
/** `rate_limited` or `overloaded`: come back after `retryAfterMs`. */
export class RateLimitError extends APIError {}
/** `insufficient_quota`: a budget would be exceeded. */
export class QuotaExceededError extends RateLimitError {}
/** `unavailable`: no replica can serve the model now. */
export class UnavailableError extends APIError {}
/** `timeout`. */
export class GatewayTimeoutError extends APIError {}
/** `upstream_error`: the runtime or provider failed. */
export class UpstreamError extends APIError {}
/** The router could not be reached. */
export class APIConnectionError extends InferFluxError {}
/** The connection dropped and the stream could not be resumed within the reconnect budget. */
export class StreamInterruptedError extends InferFluxError {}
/** The router sent something the contract does not allow (a gap in offsets). */
export class ProtocolError extends InferFluxError {}

type APIErrorClass = new (message: string, details?: ErrorDetails) => APIError;

const BY_CODE: Record<string, APIErrorClass> = {
  bad_request: BadRequestError,
  invalid_request_error: BadRequestError,
  content_filtered: ContentFilteredError,
  context_length: ContextLengthError,
  guardrail_blocked: GuardrailBlockedError,
  input_too_large: InputTooLargeError,
  auth: AuthenticationError,
  invalid_token: AuthenticationError,
  insufficient_scope: PermissionDeniedError,
  not_found: NotFoundError,
  conflict: ConflictError,
  rate_limited: RateLimitError,
  overloaded: RateLimitError,
  insufficient_quota: QuotaExceededError,
  unavailable: UnavailableError,
  timeout: GatewayTimeoutError,
  upstream_error: UpstreamError,
};

const BY_STATUS: Record<number, APIErrorClass> = {
  400: BadRequestError,
  401: AuthenticationError,
  403: PermissionDeniedError,
  404: NotFoundError,
  409: ConflictError,
  410: StreamGoneError,
  413: InputTooLargeError,
  429: RateLimitError,
  502: UpstreamError,
  503: UnavailableError,
  504: GatewayTimeoutError,
};

/** A `retry-after` header in milliseconds (the router sends whole seconds); undefined when absent. */
export function retryAfterMs(header: string | null): number | undefined {
  if (header === null) return undefined;
  const seconds = Number(header);
  return Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : undefined;
}

/**
 * The typed error for an OpenAI-shaped error `body` answered with `status`. `resuming` marks an answer
 * to a resume request, where 401 means a forged token and 410 a stream that is gone.
 */
export function errorFrom(
  status: number | undefined,
  body: unknown,
  extra: { retryAfterMs?: number | undefined; requestId?: string | null; resuming?: boolean } = {},
): APIError {
  const error = (body as { error?: unknown } | null)?.error;
  const detail = typeof error === "object" && error !== null ? (error as Record<string, unknown>) : {};
  const code = typeof detail["code"] === "string" ? detail["code"] : "unknown";
  const message = typeof detail["message"] === "string" ? detail["message"] : `HTTP ${status ?? "error"}`;
  let kind: APIErrorClass;
  if (extra.resuming === true && status === 401) kind = InvalidResumeTokenError;
  else if (status === 410) kind = StreamGoneError;
  else kind = BY_CODE[code] ?? (status !== undefined ? BY_STATUS[status] : undefined) ?? APIError;
  return new kind(message, {
    code,
    status,
    param: typeof detail["param"] === "string" ? detail["param"] : null,
    retryAfterMs: extra.retryAfterMs,
    requestId: extra.requestId ?? null,
  });
}
