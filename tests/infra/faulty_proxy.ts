/**
 * A fault-injecting HTTP/1.1 proxy on loopback, to put in front of the GCS
 * emulator. It fails a configurable fraction of requests, chosen by a seeded
 * generator, in one of these ways:
 *
 * - `"503"` / `"429"`: answers with that status and never forwards the request;
 * - `"reset"`: closes the connection as soon as the request head arrived, without
 *   forwarding it (the server never sees it);
 * - `"cut"`: forwards the request, then closes the connection part way through
 *   the response (the server did the work, the client lost the answer: the case
 *   that needs idempotent writes).
 *
 * It works on TCP so it can drop connections: each request gets its own
 * upstream connection (`Connection: close` both ways), and the `Host` header is
 * kept, so URLs the server builds from it (resumable upload sessions) name the
 * proxy.
 *
 * @module
 */

/** A way to fail a request. */
export type Fault = "503" | "429" | "reset" | "cut";

/** Options of {@linkcode startFaultyProxy}. */
export interface FaultyProxyOptions {
  /** The server to forward to, e.g. `http://127.0.0.1:4443`. */
  upstream: string;
  /**
   * Fraction of requests to fail, between 0 and 1.
   *
   * @default {0.2}
   */
  failureRate?: number;
  /**
   * The faults to pick from, uniformly.
   *
   * @default {["503", "429", "reset", "cut"]}
   */
  faults?: readonly Fault[];
  /**
   * Seed of the generator that decides which requests fail and how.
   *
   * @default {1}
   */
  seed?: number;
  /**
   * Requests to never fail, by method, target (path and query) and the whole
   * request head (request line and headers). Also a hook to observe requests.
   *
   * @default {() => false}
   */
  spare?: (method: string, target: string, head: string) => boolean;
}

/** What the proxy did so far. */
export interface ProxyStats {
  /** Requests seen. */
  requests: number;
  /** Requests failed, by fault. */
  failed: Record<Fault, number>;
}

/** A running proxy. Dispose it to stop listening and close every connection. */
export interface FaultyProxy extends AsyncDisposable {
  /** `127.0.0.1:PORT`. */
  readonly host: string;
  /** `http://127.0.0.1:PORT`. */
  readonly url: string;
  /** Counters, live. */
  readonly stats: ProxyStats;
  /** Change the failure rate, e.g. to 0 while setting up. */
  setFailureRate(rate: number): void;
}

/** A small seeded generator (mulberry32) returning numbers in [0, 1). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const HEAD_END = new Uint8Array([13, 10, 13, 10]);
const MAX_HEAD = 64 * 1024;

function indexOfHeadEnd(buffer: Uint8Array, length: number): number {
  outer: for (let i = 0; i + 4 <= length; i++) {
    for (let j = 0; j < 4; j++) if (buffer[i + j] !== HEAD_END[j]) continue outer;
    return i;
  }
  return -1;
}

/** Read from `conn` until a full HTTP head; return the head text and the bytes after it. */
async function readHead(
  conn: Deno.Conn,
): Promise<{ head: string; rest: Uint8Array } | undefined> {
  let buffer = new Uint8Array(16 * 1024);
  let length = 0;
  for (;;) {
    if (length === buffer.length) {
      if (buffer.length >= MAX_HEAD) return undefined;
      const bigger = new Uint8Array(buffer.length * 2);
      bigger.set(buffer);
      buffer = bigger;
    }
    const n = await conn.read(buffer.subarray(length));
    if (n === null) return undefined;
    length += n;
    const end = indexOfHeadEnd(buffer, length);
    if (end >= 0) {
      return {
        head: new TextDecoder().decode(buffer.subarray(0, end)),
        rest: buffer.slice(end + 4, length),
      };
    }
  }
}

/** Replace the `Connection` header of a head with `Connection: close`. */
function closeHead(head: string): string {
  const lines = head.split("\r\n").filter((line) => !/^connection\s*:/i.test(line));
  return [...lines, "Connection: close"].join("\r\n") + "\r\n\r\n";
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let written = 0; written < bytes.length;) {
    written += await conn.write(bytes.subarray(written));
  }
}

/** Copy `from` to `to` until `from` ends, or `limit` bytes, whichever first. */
async function copy(from: Deno.Conn, to: Deno.Conn, limit = Infinity): Promise<void> {
  const buffer = new Uint8Array(64 * 1024);
  let left = limit;
  while (left > 0) {
    const n = await from.read(buffer);
    if (n === null) return;
    const take = Math.min(n, left);
    await writeAll(to, buffer.subarray(0, take));
    left -= take;
  }
}

function close(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}

/**
 * Start a proxy on a free loopback port in front of `options.upstream`.
 *
 * @throws {RangeError} `failureRate` is outside [0, 1] or `faults` is empty.
 */
export function startFaultyProxy(options: FaultyProxyOptions): FaultyProxy {
  const {
    upstream,
    failureRate = 0.2,
    faults = ["503", "429", "reset", "cut"],
    seed = 1,
    spare = () => false,
  } = options;
  const checkRate = (rate: number) => {
    if (!(rate >= 0 && rate <= 1)) {
      throw new RangeError(`Cannot use failure rate ${rate}: give a number between 0 and 1`);
    }
  };
  checkRate(failureRate);
  if (faults.length === 0) {
    throw new RangeError("Cannot inject faults: the list of faults is empty");
  }
  const target = new URL(upstream);
  const upstreamPort = Number(target.port || 80);
  const random = seededRandom(seed);
  let rate = failureRate;
  const stats: ProxyStats = { requests: 0, failed: { "503": 0, "429": 0, reset: 0, cut: 0 } };
  const open = new Set<Deno.Conn>();
  const handlers = new Set<Promise<void>>();

  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;

  const handle = async (client: Deno.Conn) => {
    let server: Deno.Conn | undefined;
    let upload: Promise<void> | undefined;
    try {
      const request = await readHead(client);
      if (!request) return;
      const [method = "", path = ""] = request.head.split(" ", 2);
      stats.requests++;
      let fault: Fault | undefined;
      if (!spare(method, path, request.head) && random() < rate) {
        fault = faults[Math.floor(random() * faults.length)];
      }
      if (fault) stats.failed[fault]++;
      if (fault === "reset") return;
      if (fault === "503" || fault === "429") {
        const body = JSON.stringify({
          error: { code: Number(fault), message: `injected ${fault} by the faulty proxy` },
        });
        const reason = fault === "503" ? "Service Unavailable" : "Too Many Requests";
        await writeAll(
          client,
          new TextEncoder().encode(
            `HTTP/1.1 ${fault} ${reason}\r\nContent-Type: application/json\r\n` +
              `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
          ),
        );
        return;
      }
      server = await Deno.connect({ hostname: target.hostname, port: upstreamPort });
      open.add(server);
      await writeAll(server, new TextEncoder().encode(closeHead(request.head)));
      await writeAll(server, request.rest);
      upload = copy(client, server).catch(() => {});
      const response = await readHead(server);
      if (!response) return;
      const head = new TextEncoder().encode(closeHead(response.head));
      if (fault === "cut") {
        const declared = /\r\ncontent-length\s*:\s*(\d+)/i.exec("\r\n" + response.head)?.[1];
        const size = head.length + (declared ? Number(declared) : 4096);
        const keep = Math.floor(random() * size);
        const whole = new Uint8Array(head.length + response.rest.length);
        whole.set(head);
        whole.set(response.rest, head.length);
        await writeAll(client, whole.subarray(0, Math.min(keep, whole.length)));
        if (keep > whole.length) await copy(server, client, keep - whole.length);
        return;
      }
      await writeAll(client, head);
      await writeAll(client, response.rest);
      await copy(server, client);
    } catch {
      // a side went away: close both
    } finally {
      if (server) {
        open.delete(server);
        close(server);
      }
      open.delete(client);
      close(client);
      await upload;
    }
  };

  const accepting = (async () => {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch {
        return;
      }
      open.add(conn);
      const handler = handle(conn);
      handlers.add(handler);
      void handler.finally(() => handlers.delete(handler));
    }
  })();

  return {
    host: `127.0.0.1:${port}`,
    url: `http://127.0.0.1:${port}`,
    stats,
    setFailureRate(next: number) {
      checkRate(next);
      rate = next;
    },
    async [Symbol.asyncDispose]() {
      listener.close();
      await accepting;
      for (const conn of open) close(conn);
      open.clear();
      await Promise.allSettled([...handlers]);
    },
  };
}
