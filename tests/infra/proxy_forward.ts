/**
 * The forwarding half of the fault proxy: send a request upstream and its
 * answer back, on fresh connections, breaking or pausing either direction at
 * a byte offset as planned.
 *
 * @module
 */

import type { RequestInfo } from "./gcs_operations.ts";
import { headerOf } from "./gcs_operations.ts";
import { closeHead, closeQuietly, ConnReader, readHead, sleep, writeAll } from "./proxy_io.ts";

/** One exchange in flight: the client's connection and what is known of the request. */
export interface Exchange {
  client: Deno.Conn;
  clientReader: ConnReader;
  info: RequestInfo;
  head: string;
  rest: Uint8Array;
  /** The request line, for the record of fired instructions. */
  line: string;
}

/** A pause at a byte offset; `onFire` is called when the offset is reached. */
export interface StallPlan {
  seconds: number;
  afterBytes: number;
  onFire(): void;
}

/** What to do to a forwarded response. */
export interface ResponsePlan {
  /** Close the connection after this many body bytes (the head is sent whole). */
  breakAt?: number;
  /** Called when the body reached `breakAt` and the connection is being broken. */
  onBreak?: () => void;
  /** The random `"cut"` fault: keep a random prefix of the response. */
  cutAt?: () => number;
  /** Pause after some body bytes. */
  stall?: StallPlan;
}

/** What to do to a forwarded request body. */
export interface RequestPlan {
  /** The object offset of the body's first byte (a chunk's first byte). */
  startOffset?: number;
  /** Pause after an object offset. */
  stall?: StallPlan;
}

/** Copy a response body: `rest`, then from `reader`, up to `limit` bytes. Returns the count. */
async function copyBody(
  reader: ConnReader,
  to: Deno.Conn,
  rest: Uint8Array,
  limit: number,
): Promise<number> {
  let sent = 0;
  for (let piece: Uint8Array | null = rest; piece !== null; piece = await reader.take()) {
    const take = piece.subarray(0, Math.min(piece.length, limit - sent));
    await writeAll(to, take);
    sent += take.length;
    if (sent >= limit) return sent;
  }
  return sent;
}

/** A signal that aborts when `promise` settles. */
function signalOf(promise: Promise<unknown>): AbortSignal {
  const controller = new AbortController();
  promise.then(() => controller.abort(), () => controller.abort());
  return controller.signal;
}

/** The server behind the proxy: fresh connections, tracked so they can all be closed. */
export class Upstream {
  readonly #hostname: string;
  readonly #port: number;
  readonly #open: Set<Deno.Conn>;
  readonly #disposed: AbortSignal;

  /** Connections are added to `open`; `disposed` ends every pause. */
  constructor(hostname: string, port: number, open: Set<Deno.Conn>, disposed: AbortSignal) {
    this.#hostname = hostname;
    this.#port = port;
    this.#open = open;
    this.#disposed = disposed;
  }

  /** A new connection to the server. */
  async connect(): Promise<Deno.Conn> {
    const server = await Deno.connect({ hostname: this.#hostname, port: this.#port });
    this.#open.add(server);
    return server;
  }

  /** Forward the request, then copy the response, breaking or stalling it as planned. */
  async forward(
    x: Exchange,
    response: ResponsePlan = {},
    request: RequestPlan = {},
  ): Promise<void> {
    const server = await this.connect();
    const serverReader = new ConnReader(server);
    try {
      await writeAll(server, new TextEncoder().encode(closeHead(x.head)));
      // When the client hangs up (or, normally, once it has its answer), the
      // server's connection closes too, so a server reading a body that will
      // never come is not left waiting.
      const pump = this.#pumpRequest(x, server, request).finally(() => closeQuietly(server));
      pump.catch(() => {});
      const answer = await readHead(serverReader);
      if (!answer) return;
      const head = new TextEncoder().encode(closeHead(answer.head));
      if (response.cutAt) {
        const declared = headerOf(answer.head, "content-length");
        const size = head.length + (declared ? Number(declared) : 4096);
        const keep = Math.floor(response.cutAt() * size);
        await writeAll(x.client, head.subarray(0, Math.min(keep, head.length)));
        if (keep > head.length) {
          await copyBody(serverReader, x.client, answer.rest, keep - head.length);
        }
        return;
      }
      await writeAll(x.client, head);
      if (response.breakAt !== undefined) {
        const sent = await copyBody(serverReader, x.client, answer.rest, response.breakAt);
        if (sent >= response.breakAt) response.onBreak?.();
        return;
      }
      const stall = response.stall;
      if (!stall) {
        await copyBody(serverReader, x.client, answer.rest, Infinity);
        return;
      }
      const sent = await copyBody(serverReader, x.client, answer.rest, stall.afterBytes);
      if (sent < stall.afterBytes) return; // the body ended before the stall point
      stall.onFire();
      // A client that hangs up ends its request pump, and the stall with it.
      const abort = AbortSignal.any([this.#disposed, signalOf(pump)]);
      await sleep(stall.seconds * 1000, abort);
      if (abort.aborted) return;
      await copyBody(serverReader, x.client, new Uint8Array(0), Infinity);
    } finally {
      this.#open.delete(server);
      closeQuietly(server);
    }
  }

  /**
   * Copy the request body to the server until the client hangs up; pause at
   * an object offset if planned (the client hanging up ends the pause).
   */
  async #pumpRequest(x: Exchange, server: Deno.Conn, plan: RequestPlan): Promise<void> {
    let offset = plan.startOffset ?? 0;
    let stall = plan.stall;
    for (
      let piece: Uint8Array | null = x.rest;
      piece !== null;
      piece = await x.clientReader.take()
    ) {
      if (!stall || offset + piece.length <= stall.afterBytes) {
        await writeAll(server, piece);
        offset += piece.length;
        continue;
      }
      const before = Math.max(0, stall.afterBytes - offset);
      await writeAll(server, piece.subarray(0, before));
      const held = [piece.subarray(before)];
      stall.onFire();
      const until = sleep(stall.seconds * 1000, this.#disposed).then(() => "time" as const);
      stall = undefined;
      for (;;) {
        const next = await Promise.race([x.clientReader.peek().then(() => "data" as const), until]);
        if (next === "time") break;
        const more = await x.clientReader.take();
        if (more === null) return; // the client hung up during the pause
        held.push(more);
      }
      if (this.#disposed.aborted) return;
      for (const bytes of held) await writeAll(server, bytes);
      offset = Infinity;
    }
  }
}
