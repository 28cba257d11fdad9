/**
 * A fault-injecting HTTP/1.1 proxy on loopback, to put in front of a GCS
 * emulator. It fails requests in two ways, which can be combined:
 *
 * - **Conformance instructions** (the way googleapis/storage-testbench drives
 *   Google's client libraries): a per-test {@linkcode InstructionSet} names,
 *   per operation (`storage.objects.insert`, `storage.objects.get`, …), the
 *   instructions of googleapis/conformance-tests `retry_tests.json` to apply in
 *   order: `return-503`, `return-reset-connection`, `return-503-after-256K`,
 *   `return-reset-connection-after-256K`, `return-broken-stream-after-256K`,
 *   `stall-for-10s-after-256K`, … (see
 *   `fault_instructions.ts`). `setInstructions()` starts a new test.
 * - **Random faults**: a fraction of requests, chosen by a seeded generator,
 *   get `"503"` / `"429"` (answered without forwarding), `"reset"` (connection
 *   closed before forwarding: the server never sees the request) or `"cut"`
 *   (forwarded, then the connection is closed part way through the response:
 *   the server did the work, the client lost the answer).
 *
 * It works on TCP so it can drop connections: each request gets its own
 * upstream connection (`Connection: close` both ways), and the `Host` header is
 * kept, so URLs the server builds from it (resumable upload sessions) name the
 * proxy. Every request is logged ({@linkcode FaultyProxy.requests}).
 *
 * @module
 */

import { describeRequest, headerOf, parseUploadRange, type RequestInfo } from "./gcs_operations.ts";
import { type Fired, InstructionQueues, type InstructionSet } from "./fault_instructions.ts";
import {
  closeHead,
  closeQuietly,
  ConnReader,
  errorResponse,
  readBody,
  readHead,
  writeAll,
} from "./proxy_io.ts";
import { type Exchange, type RequestPlan, type ResponsePlan, Upstream } from "./proxy_forward.ts";

export type { InstructionSet } from "./fault_instructions.ts";
export type { RequestInfo } from "./gcs_operations.ts";

/** A random way to fail a request. */
export type Fault = "503" | "429" | "reset" | "cut";

/** Options of {@linkcode startFaultyProxy}. */
export interface FaultyProxyOptions {
  /** The server to forward to, e.g. `http://127.0.0.1:4443`. */
  upstream: string;
  /**
   * Fraction of requests to fail at random, between 0 and 1.
   *
   * @default {0}
   */
  failureRate?: number;
  /**
   * The random faults to pick from, uniformly.
   *
   * @default {["503", "429", "reset", "cut"]}
   */
  faults?: readonly Fault[];
  /**
   * Seed of the generator that decides which requests fail at random and how.
   *
   * @default {1}
   */
  seed?: number;
  /**
   * Requests never to fail at random, by method, target (path and query) and
   * the whole request head. Also a hook to observe requests.
   *
   * @default {() => false}
   */
  spare?: (method: string, target: string, head: string) => boolean;
  /**
   * Conformance instructions to apply from the start.
   *
   * @default {{}}
   */
  instructions?: InstructionSet;
}

/** What the proxy did so far. */
export interface ProxyStats {
  /** Requests seen. */
  requests: number;
  /** Requests failed at random, by fault. */
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
  /** Every request seen, in arrival order. */
  readonly requests: readonly RequestInfo[];
  /** The conformance instructions that fired since the last `setInstructions`. */
  readonly fired: readonly Fired[];
  /** Change the random failure rate, e.g. to 0 while setting up. */
  setFailureRate(rate: number): void;
  /**
   * Start a new retry test: replace the instruction queues.
   *
   * @throws {RangeError} An instruction is unknown or gRPC-only.
   */
  setInstructions(set: InstructionSet): void;
  /** The instructions not fired yet, per operation. */
  remaining(): InstructionSet;
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

function isChunked(head: string): boolean {
  return /chunked/i.test(headerOf(head, "transfer-encoding") ?? "");
}

/**
 * Start a proxy on a free loopback port in front of `options.upstream`.
 *
 * @throws {RangeError} `failureRate` is outside [0, 1], `faults` is empty, or
 *   an instruction is unknown.
 */
export function startFaultyProxy(options: FaultyProxyOptions): FaultyProxy {
  const {
    upstream,
    failureRate = 0,
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
  let queues = new InstructionQueues(options.instructions);
  const target = new URL(upstream);
  const upstreamPort = Number(target.port || 80);
  const random = seededRandom(seed);
  let rate = failureRate;
  const stats: ProxyStats = { requests: 0, failed: { "503": 0, "429": 0, reset: 0, cut: 0 } };
  const requests: RequestInfo[] = [];
  const open = new Set<Deno.Conn>();
  const handlers = new Set<Promise<void>>();
  const disposed = new AbortController();

  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;

  const upstreamConn = new Upstream(target.hostname, upstreamPort, open, disposed.signal);
  const forward = (x: Exchange, response?: ResponsePlan, request?: RequestPlan) =>
    upstreamConn.forward(x, response, request);

  /** Answer `status` once the request body is read, without forwarding. */
  const answer = async (x: Exchange, status: number, why: string) => {
    await readBody(x.clientReader, x.rest, x.info.contentLength, isChunked(x.head)).catch(() => {});
    await writeAll(x.client, errorResponse(status, `${why} (injected by the faulty proxy)`));
  };

  /**
   * `return-X-after-YK` on a chunk of an upload session: the server keeps the
   * object's bytes before offset Y (the chunk is cut there and sent as an
   * intermediate chunk of unknown total), then the client is answered X.
   */
  const commitThenFail = async (x: Exchange, afterBytes: number, status: number | "reset") => {
    const first = parseUploadRange(x.info.contentRange)?.first ?? 0;
    const body = await readBody(x.clientReader, x.rest, x.info.contentLength, false);
    if (afterBytes > first) {
      const keep = body.subarray(0, Math.min(body.length, afterBytes - first));
      const server = await upstreamConn.connect();
      try {
        const head = closeHead(x.head, {
          "Content-Length": String(keep.length),
          "Content-Range": `bytes ${first}-${first + keep.length - 1}/*`,
        });
        await writeAll(server, new TextEncoder().encode(head));
        await writeAll(server, keep);
        const reader = new ConnReader(server);
        while ((await reader.take()) !== null); // the server's answer (a 308) is dropped
      } finally {
        open.delete(server);
        closeQuietly(server);
      }
    }
    if (status === "reset") return; // the connection is closed unanswered
    const why = `return-${status} after ${afterBytes} bytes (injected by the faulty proxy)`;
    await writeAll(x.client, errorResponse(status, why));
  };

  /** Apply the next instruction of the request's operation, if it applies; say whether it did. */
  const applyInstruction = async (x: Exchange): Promise<boolean> => {
    const { info } = x;
    const operation = info.operation;
    const next = queues.peek(operation);
    if (!next || !operation) return false;
    const take = () => queues.take(operation, x.line);
    const range = parseUploadRange(info.contentRange);
    const chunk = info.uploadSession && info.method === "PUT" && range?.first !== undefined;
    const bodyLength = info.contentLength ?? (isChunked(x.head) ? Infinity : 0);
    switch (next.kind) {
      case "status":
        take();
        await answer(x, next.status, `return-${next.status}`);
        return true;
      case "reset":
        take();
        return true; // the connection is closed unanswered
      case "status-after":
        if (chunk) {
          if (range.last! + 1 < next.afterBytes) return false;
          take();
          await commitThenFail(x, next.afterBytes, next.status);
          return true;
        }
        if (info.uploadSession || bodyLength < next.afterBytes) return false;
        take();
        await answer(x, next.status, `return-${next.status} after ${next.afterBytes} bytes`);
        return true;
      case "reset-after":
        if (chunk) {
          if (range.last! + 1 < next.afterBytes) return false;
          take();
          await commitThenFail(x, next.afterBytes, "reset");
          return true;
        }
        if (info.uploadSession) return false;
        if (bodyLength > 0) {
          if (bodyLength < next.afterBytes) return false;
          take();
          return true; // closed before the body was forwarded
        }
        await forward(x, { breakAt: next.afterBytes, onBreak: take });
        return true;
      case "broken-stream":
        await forward(x, { breakAt: next.afterBytes, onBreak: take });
        return true;
      case "broken-final-chunk": {
        const final = info.uploadSession && range?.total !== undefined &&
          (range.last === undefined || range.last + 1 === range.total);
        if (!final) return false;
        take();
        await forward(x, { breakAt: next.afterBytes });
        return true;
      }
      case "stall": {
        const plan = { seconds: next.seconds, afterBytes: next.afterBytes, onFire: take };
        if (bodyLength > 0) {
          await forward(x, {}, { startOffset: chunk ? range.first : 0, stall: plan });
        } else await forward(x, { stall: plan });
        return true;
      }
    }
  };

  const handle = async (client: Deno.Conn) => {
    const clientReader = new ConnReader(client);
    try {
      const request = await readHead(clientReader);
      if (!request) return;
      const info = describeRequest(request.head);
      requests.push(info);
      stats.requests++;
      const x: Exchange = {
        client,
        clientReader,
        info,
        head: request.head,
        rest: request.rest,
        line: `${info.method} ${info.target}`,
      };
      if (await applyInstruction(x)) return;
      let fault: Fault | undefined;
      if (!spare(info.method, info.target, request.head) && random() < rate) {
        fault = faults[Math.floor(random() * faults.length)];
      }
      if (fault) stats.failed[fault]++;
      if (fault === "reset") return;
      if (fault === "503" || fault === "429") {
        await writeAll(
          client,
          errorResponse(Number(fault), `injected ${fault} by the faulty proxy`),
        );
        return;
      }
      await forward(x, fault === "cut" ? { cutAt: random } : {});
    } catch {
      // a side went away: close both
    } finally {
      open.delete(client);
      closeQuietly(client);
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
    requests,
    get fired() {
      return queues.fired;
    },
    setFailureRate(next: number) {
      checkRate(next);
      rate = next;
    },
    setInstructions(set: InstructionSet) {
      queues = new InstructionQueues(set);
    },
    remaining: () => queues.remaining(),
    async [Symbol.asyncDispose]() {
      disposed.abort();
      listener.close();
      await accepting;
      for (const conn of open) closeQuietly(conn);
      open.clear();
      await Promise.allSettled([...handlers]);
    },
  };
}
