/**
 * Retrying transient failures of remote storage: which errors are transient,
 * and exponential backoff with full jitter.
 *
 * @module
 */

/** Options of {@linkcode retry} and {@linkcode backoffDelay}. */
export interface RetryOptions {
  /**
   * Attempts in total, the first one included.
   *
   * @default {7}
   */
  maxAttempts?: number;
  /**
   * Upper bound of the delay before the first retry, in milliseconds.
   *
   * @default {500}
   */
  minDelay?: number;
  /**
   * Upper bound of any one delay, in milliseconds.
   *
   * @default {30000}
   */
  maxDelay?: number;
  /**
   * Growth of the delay bound from one retry to the next.
   *
   * @default {2}
   */
  multiplier?: number;
  /**
   * Whether an error is worth another attempt.
   *
   * @default {isTransient}
   */
  isRetryable?: (error: unknown) => boolean;
  /**
   * Waits the given number of milliseconds; inject it to test without sleeping.
   *
   * @default {(ms) => new Promise((resolve) => setTimeout(resolve, ms))}
   */
  delayFn?: (ms: number) => Promise<void>;
  /**
   * Source of randomness in [0, 1) for the jitter.
   *
   * @default {Math.random}
   */
  random?: () => number;
}

/** The defaults of {@linkcode RetryOptions}, in one place. */
export const RETRY_DEFAULTS: Readonly<Required<RetryOptions>> = Object.freeze({
  maxAttempts: 7,
  minDelay: 500,
  maxDelay: 30_000,
  multiplier: 2,
  isRetryable: isTransient,
  delayFn: (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)),
  random: Math.random,
});

/**
 * Check retry options.
 *
 * @throws {RangeError} A count or delay is out of range.
 */
export function checkRetryOptions(options: RetryOptions): Required<RetryOptions> {
  const resolved = { ...RETRY_DEFAULTS, ...options };
  const { maxAttempts, minDelay, maxDelay, multiplier } = resolved;
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1) {
    throw new RangeError(
      `Cannot retry with maxAttempts ${maxAttempts}: give an integer of 1 or more`,
    );
  }
  if (!(minDelay >= 0 && maxDelay >= minDelay)) {
    throw new RangeError(
      `Cannot retry with minDelay ${minDelay} and maxDelay ${maxDelay}: give 0 <= minDelay <= maxDelay`,
    );
  }
  if (!(multiplier >= 1)) {
    throw new RangeError(`Cannot retry with multiplier ${multiplier}: give a number of 1 or more`);
  }
  return resolved;
}

/**
 * The delay before retry number `retry` (1 for the first retry): a uniformly
 * random duration up to `min(maxDelay, minDelay * multiplier^(retry-1))`
 * ("full jitter"), so that many clients failing together spread out.
 */
export function backoffDelay(retry: number, options: RetryOptions = {}): number {
  const { minDelay, maxDelay, multiplier, random } = { ...RETRY_DEFAULTS, ...options };
  const bound = Math.min(maxDelay, minDelay * multiplier ** Math.max(0, retry - 1));
  return Math.floor(random() * bound);
}

/**
 * Run `fn` until it succeeds, it throws an error that is not retryable, or
 * `maxAttempts` attempts failed; wait {@linkcode backoffDelay} between attempts.
 *
 * @returns What `fn` returned.
 * @throws The last error of `fn`, unchanged.
 */
export async function retry<T>(
  fn: (attempt: number) => Promise<T>,
  options: RetryOptions = {},
): Promise<T> {
  const resolved = checkRetryOptions(options);
  for (let attempt = 1;; attempt++) {
    try {
      return await fn(attempt);
    } catch (error) {
      if (attempt >= resolved.maxAttempts || !resolved.isRetryable(error)) throw error;
      await resolved.delayFn(backoffDelay(attempt, resolved));
    }
  }
}

const TRANSIENT_STATUS = new Set([408, 429, 500, 502, 503, 504]);

/** The HTTP status an error carries (`code` or `status` of it or its response), if any. */
export function httpStatusOf(error: unknown): number | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  const e = error as { code?: unknown; status?: unknown; response?: { status?: unknown } };
  for (const value of [e.code, e.status, e.response?.status]) {
    const status = typeof value === "string" && /^\d{3}$/.test(value) ? Number(value) : value;
    if (typeof status === "number" && status >= 100 && status < 600) return status;
  }
  return undefined;
}

// Codes and message fragments of failed connections, as Node, undici, Deno's
// fetch and gaxios report them.
const CONNECTION_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EAI_AGAIN",
  "ENETUNREACH",
  "EHOSTUNREACH",
  "ERR_STREAM_PREMATURE_CLOSE",
  "UND_ERR_SOCKET",
  "UND_ERR_CLOSED",
]);
const CONNECTION_MESSAGES = [
  "connection reset",
  "connection closed",
  "connection refused",
  "connection error",
  "socket hang up",
  "socket connection timeout",
  "unexpected connection closure",
  "premature close",
  "unexpected end",
  "unexpected eof",
  "error sending request",
  "error reading a body",
  "error decoding response body",
  "broken pipe",
  "request timed out",
  "network error",
  "eai_again",
  "econnreset",
  "epipe",
];

/**
 * Whether an error is worth retrying: HTTP 408, 429 or 5xx, or a dropped,
 * refused or timed out connection (looked for in the error, its `cause` chain
 * and the `errors` list GCS errors carry).
 */
export function isTransient(error: unknown): boolean {
  const seen = new Set<unknown>();
  const visit = (value: unknown): boolean => {
    if (typeof value !== "object" || value === null || seen.has(value)) return false;
    seen.add(value);
    const status = httpStatusOf(value);
    if (status !== undefined) return TRANSIENT_STATUS.has(status);
    if (
      value instanceof Deno.errors.ConnectionReset ||
      value instanceof Deno.errors.ConnectionAborted ||
      value instanceof Deno.errors.ConnectionRefused || value instanceof Deno.errors.BrokenPipe ||
      value instanceof Deno.errors.UnexpectedEof || value instanceof Deno.errors.TimedOut
    ) {
      return true;
    }
    const e = value as { code?: unknown; message?: unknown; reason?: unknown; cause?: unknown };
    if (typeof e.code === "string" && CONNECTION_CODES.has(e.code.toUpperCase())) return true;
    for (const text of [e.message, e.reason]) {
      if (typeof text !== "string") continue;
      const lower = text.toLowerCase();
      if (CONNECTION_MESSAGES.some((fragment) => lower.includes(fragment))) return true;
    }
    const nested = (value as { errors?: unknown }).errors;
    if (Array.isArray(nested) && nested.some(visit)) return true;
    return visit(e.cause);
  };
  return visit(error);
}

/**
 * `promise`, or an `ETIMEDOUT` error (transient) if it has not settled within
 * `ms`. The work behind it is not cancelled: its outcome is ignored.
 */
export function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(Object.assign(new Error(`no answer within ${ms} ms (stalled request)`), {
          code: "ETIMEDOUT",
        })),
      ms,
    );
  });
  promise.catch(() => {}); // a late failure of an abandoned attempt is not an error
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}
