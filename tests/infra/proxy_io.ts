/**
 * Byte plumbing of the fault proxy: reading HTTP/1.1 heads and bodies off a
 * TCP connection, writing them on, and a reader whose pending read can be
 * raced against a timer without losing data.
 *
 * @module
 */

const HEAD_END = new Uint8Array([13, 10, 13, 10]);
const MAX_HEAD = 64 * 1024;

function indexOfHeadEnd(buffer: Uint8Array, length: number): number {
  outer: for (let i = 0; i + 4 <= length; i++) {
    for (let j = 0; j < 4; j++) if (buffer[i + j] !== HEAD_END[j]) continue outer;
    return i;
  }
  return -1;
}

/**
 * Reads a connection piece by piece. `peek()` starts (or returns) the pending
 * read without taking it, so it can be raced against a timer; `take()` takes
 * it. `null` means the peer closed (or the connection failed).
 */
export class ConnReader {
  #conn: Deno.Conn;
  #pending: Promise<Uint8Array | null> | undefined;
  #buffer = new Uint8Array(64 * 1024);

  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  /** The pending read, started if none is. */
  peek(): Promise<Uint8Array | null> {
    this.#pending ??= this.#conn.read(this.#buffer).then(
      (n) => (n === null ? null : this.#buffer.slice(0, n)),
      () => null,
    );
    return this.#pending;
  }

  /** The next piece of bytes, or `null` at the end. */
  async take(): Promise<Uint8Array | null> {
    const bytes = await this.peek();
    this.#pending = undefined;
    return bytes;
  }
}

/** Read until a full HTTP head; return its text and the bytes after it. */
export async function readHead(
  reader: ConnReader,
): Promise<{ head: string; rest: Uint8Array } | undefined> {
  let buffer = new Uint8Array(0);
  for (;;) {
    const piece = await reader.take();
    if (piece === null) return undefined;
    const joined = new Uint8Array(buffer.length + piece.length);
    joined.set(buffer);
    joined.set(piece, buffer.length);
    buffer = joined;
    const end = indexOfHeadEnd(buffer, buffer.length);
    if (end >= 0) {
      return {
        head: new TextDecoder().decode(buffer.subarray(0, end)),
        rest: buffer.slice(end + 4),
      };
    }
    if (buffer.length >= MAX_HEAD) return undefined;
  }
}

/**
 * Read a whole request body: `length` bytes, or for a chunked body up to its
 * last chunk (the raw chunked bytes are returned). `rest` is what came with
 * the head.
 *
 * @throws {Error} The peer closed before the body was complete.
 */
export async function readBody(
  reader: ConnReader,
  rest: Uint8Array,
  length: number | undefined,
  chunked: boolean,
): Promise<Uint8Array> {
  const pieces = [rest];
  let size = rest.length;
  const done = () =>
    length !== undefined ? size >= length : !chunked || endsChunked(pieces.at(-1)!, pieces);
  while (!done()) {
    const piece = await reader.take();
    if (piece === null) throw new Error(`the client closed after ${size} bytes of the body`);
    pieces.push(piece);
    size += piece.length;
  }
  const body = new Uint8Array(size);
  let at = 0;
  for (const piece of pieces) {
    body.set(piece, at);
    at += piece.length;
  }
  return length === undefined ? body : body.subarray(0, length);
}

function endsChunked(last: Uint8Array, pieces: Uint8Array[]): boolean {
  const tail = new TextDecoder().decode(
    pieces.length > 1 && last.length < 5
      ? new Uint8Array([...pieces.at(-2)!.slice(-5), ...last])
      : last.slice(-5),
  );
  return tail.endsWith("0\r\n\r\n");
}

/** Write all of `bytes`. */
export async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let written = 0; written < bytes.length;) {
    written += await conn.write(bytes.subarray(written));
  }
}

/** Replace the `Connection` header of a head with `Connection: close`, and end it. */
export function closeHead(head: string, replace: Record<string, string> = {}): string {
  const names = new Set(["connection", ...Object.keys(replace).map((n) => n.toLowerCase())]);
  const lines = head.split("\r\n").filter((line, i) =>
    i === 0 || !names.has(line.slice(0, line.indexOf(":")).trim().toLowerCase())
  );
  const extra = Object.entries(replace).map(([name, value]) => `${name}: ${value}`);
  return [...lines, ...extra, "Connection: close"].join("\r\n") + "\r\n\r\n";
}

/** A complete HTTP response with a JSON error body, as GCS sends one. */
export function errorResponse(status: number, message: string): Uint8Array {
  const body = JSON.stringify({ error: { code: status, message } });
  return new TextEncoder().encode(
    `HTTP/1.1 ${status} ${REASONS[status] ?? "Error"}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
  );
}

const REASONS: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  408: "Request Timeout",
  412: "Precondition Failed",
  429: "Too Many Requests",
  500: "Internal Server Error",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
};

/** Close a connection, ignoring that it may be closed already. */
export function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}

/** Wait `ms`, or less if `signal` aborts. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
  });
}
