/**
 * Requests to the GCS JSON API that the client library does not make the
 * way kubeface needs (resumable upload sessions): `fetch` with the library's
 * credentials, a deadline, and errors that carry their HTTP status.
 *
 * @module
 */

/** Something that signs requests, e.g. the library's `GoogleAuth`. */
export interface RequestSigner {
  /** Headers that authorise a request to `url` (an `Authorization` bearer token). */
  getRequestHeaders(url?: string): Promise<unknown>;
}

/** Options of one request. */
export interface GcsRequestInit extends RequestInit {
  /**
   * Abandon the request if it has not answered (and its body has not been
   * read) within this many milliseconds.
   */
  timeout?: number;
}

/** `fetch` for GCS: authorised (unless talking to an emulator), with a deadline. */
export type GcsFetch = (url: string, init?: GcsRequestInit) => Promise<Response>;

/** An HTTP error answer of GCS. `status` makes it classifiable by `isTransient`. */
export class GcsHttpError extends Error {
  /** The HTTP status. */
  readonly status: number;

  /** Build the error of an answer. */
  constructor(status: number, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "GcsHttpError";
    this.status = status;
  }

  /** Read an error answer's body and build the error, e.g. `503 Service Unavailable: …`. */
  static async of(response: Response, what: string): Promise<GcsHttpError> {
    const text = await response.text().catch(() => "");
    let message = text.slice(0, 500);
    try {
      message = JSON.parse(text)?.error?.message ?? message;
    } catch {
      // not JSON
    }
    return new GcsHttpError(
      response.status,
      `${what} answered ${response.status} ${response.statusText}${message ? `: ${message}` : ""}`,
    );
  }
}

/**
 * A {@linkcode GcsFetch} that adds `signer`'s headers to each request (none
 * when `signer` is undefined, as for an emulator). A request past its
 * `timeout` fails with an `ETIMEDOUT` error, which is transient.
 */
export function gcsFetch(signer: RequestSigner | undefined): GcsFetch {
  return async (url, init = {}) => {
    const { timeout, signal, ...rest } = init;
    const headers = new Headers(rest.headers);
    if (signer) {
      const auth = new Headers(await signer.getRequestHeaders(url) as HeadersInit);
      auth.forEach((value, name) => headers.set(name, value));
    }
    const deadline = timeout === undefined ? undefined : AbortSignal.timeout(timeout);
    const signals = [signal, deadline].filter((s): s is AbortSignal => s != null);
    try {
      return await fetch(url, {
        ...rest,
        headers,
        ...(signals.length ? { signal: AbortSignal.any(signals) } : {}),
      });
    } catch (error) {
      if (deadline?.aborted) throw timedOut(url, timeout!, error);
      throw error;
    }
  };
}

/** Read a response body as JSON, under the same deadline as its request. */
export async function jsonOf<T>(response: Response, url: string, timeout?: number): Promise<T> {
  try {
    return await response.json() as T;
  } catch (error) {
    if (error instanceof DOMException && error.name === "TimeoutError") {
      throw timedOut(url, timeout ?? 0, error);
    }
    throw error;
  }
}

function timedOut(url: string, ms: number, cause: unknown): Error {
  return Object.assign(
    new Error(`no answer from ${url.split("?")[0]} within ${ms} ms (stalled request)`, { cause }),
    { code: "ETIMEDOUT" },
  );
}
