/**
 * `kubeface status KEY --serve`: a small HTTP server on the loopback
 * interface that shows one job's status page, rendered from the latest
 * `status.json` (read again from storage at most every `refreshMs`), plus
 * the job's logs and result objects the page links to. The page refreshes
 * itself while the job runs.
 *
 * @module
 */

import { NotFoundError } from "../errors.ts";
import { JobLayout } from "../format/layout.ts";
import type { Storage } from "../storage/storage.ts";
import { renderStatusHtml } from "./html.ts";
import type { JobStatus } from "../format/status.ts";

/** Options of {@linkcode serveStatus}. */
export interface StatusServerOptions {
  /**
   * Port to listen on; 0 picks a free one.
   *
   * @default {0}
   */
  port?: number;
  /**
   * Address to listen on.
   *
   * @default {"127.0.0.1"}
   */
  hostname?: string;
  /**
   * Read `status.json` from storage again at most this often, in milliseconds.
   *
   * @default {2000}
   */
  refreshMs?: number;
  /** Stops the server when aborted. */
  signal?: AbortSignal;
}

/** A running status server. */
export interface StatusServer extends AsyncDisposable {
  /** Where the page is, e.g. `http://127.0.0.1:8080/`. */
  readonly url: string;
  /** Settles once the server stopped. */
  readonly finished: Promise<void>;
  /** Stop the server. */
  shutdown(): Promise<void>;
}

interface Snapshot {
  json: string;
  html: string;
}

/** The latest status of one job, read again when older than `refreshMs`. */
class StatusSource {
  #snapshot: Snapshot | undefined;
  #readAt = 0;
  #reading: Promise<Snapshot> | undefined;

  constructor(
    readonly storage: Storage,
    readonly layout: JobLayout,
    readonly refreshMs: number,
  ) {}

  /** The latest snapshot; a failed re-read keeps the previous one. */
  current(): Promise<Snapshot> {
    if (this.#snapshot && Date.now() - this.#readAt < this.refreshMs) {
      return Promise.resolve(this.#snapshot);
    }
    this.#reading ??= this.#read().finally(() => (this.#reading = undefined));
    return this.#reading;
  }

  async #read(): Promise<Snapshot> {
    try {
      const json = await new Response(await this.storage.get(this.layout.statusJson)).text();
      if (json !== this.#snapshot?.json) {
        this.#snapshot = { json, html: renderStatusHtml(JSON.parse(json) as JobStatus) };
      }
      this.#readAt = Date.now();
      return this.#snapshot!;
    } catch (error) {
      if (this.#snapshot) return this.#snapshot;
      if (error instanceof NotFoundError) {
        throw new NotFoundError(this.storage.url + this.layout.statusJson, { cause: error });
      }
      throw error;
    }
  }
}

const HEADERS = { "cache-control": "no-store", "x-content-type-options": "nosniff" };

function text(status: number, body: string): Response {
  return new Response(body, {
    status,
    headers: { ...HEADERS, "content-type": "text/plain; charset=utf-8" },
  });
}

async function object(storage: Storage, key: string, type: string): Promise<Response> {
  try {
    return new Response(await storage.get(key), {
      headers: { ...HEADERS, "content-type": type },
    });
  } catch (error) {
    if (error instanceof NotFoundError) return text(404, `No object ${storage.url}${key}\n`);
    throw error;
  }
}

/**
 * The Host headers a request may carry: the bound address and, on
 * loopback, `localhost`, each with the port. Any other name may be a DNS
 * rebinding attack, where a web page on another site gets its name to point
 * at 127.0.0.1 to read the status page.
 */
export function allowedHosts(hostname: string, port: number): Set<string> {
  const names = new Set([hostname.includes(":") ? `[${hostname}]` : hostname]);
  if (/^(127\.|::1$|0\.0\.0\.0$|::$)/.test(hostname)) {
    for (const name of ["localhost", "127.0.0.1", "[::1]"]) names.add(name);
  }
  return new Set([...names].map((name) => `${name}:${port}`.toLowerCase()));
}

/** Answer one request. */
async function handle(
  source: StatusSource,
  request: Request,
  hosts: Set<string>,
): Promise<Response> {
  const host = request.headers.get("host")?.toLowerCase();
  if (!host || !hosts.has(host)) {
    return text(
      421,
      `Not served to Host '${host ?? ""}': open ${
        [...hosts][0]
      } instead (names that are not this server's are refused, against DNS rebinding)\n`,
    );
  }
  if (request.method !== "GET" && request.method !== "HEAD") {
    return text(405, "Only GET and HEAD are served\n");
  }
  const { layout, storage } = source;
  const path = new URL(request.url).pathname;
  if (path === "/" || path === "/status.html") {
    const { html } = await source.current();
    return new Response(html, {
      headers: { ...HEADERS, "content-type": "text/html; charset=utf-8" },
    });
  }
  if (path === "/status.json") {
    const { json } = await source.current();
    return new Response(json, {
      headers: { ...HEADERS, "content-type": "application/json; charset=utf-8" },
    });
  }
  const log = /^\/logs\/(\d+)\/([A-Za-z0-9._-]+)\.log$/.exec(path);
  if (log) {
    const response = await object(storage, layout.log(Number(log[1]), log[2]!), "text/plain");
    if (response.status !== 404) return response;
    return text(
      404,
      `No log of task ${log[1]}, attempt ${
        log[2]
      } in storage yet; it is stored when the attempt ends.\nTry: kubeface logs ${layout.key} ${
        log[1]
      } --storage ${storage.url}\n`,
    );
  }
  const result = /^\/results\/(\d+)\/([A-Za-z0-9._-]+)\.(ok|error)$/.exec(path);
  if (result) {
    const key = layout.result(Number(result[1]), result[2]!, result[3] as "ok" | "error");
    return await object(storage, key, "application/octet-stream");
  }
  return text(404, `Not found: ${path}\n`);
}

/**
 * Serve one job's status page over HTTP until `signal` aborts.
 *
 * @param storage The storage root the job is in.
 * @param key The job key.
 * @param options Port, address, refresh interval and stop signal.
 * @returns The running server.
 * @throws {RangeError} The port is not a whole number from 0 to 65535.
 * @throws {NotFoundError} The job has no status page in this storage.
 * @throws {Deno.errors.AddrInUse} The port is taken.
 */
export async function serveStatus(
  storage: Storage,
  key: string,
  options: StatusServerOptions = {},
): Promise<StatusServer> {
  const { port = 0, hostname = "127.0.0.1", refreshMs = 2000, signal } = options;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(
      `Cannot serve on port ${port}: use a whole number from 1 to 65535, or 0 for a free port`,
    );
  }
  const source = new StatusSource(storage, new JobLayout(key), refreshMs);
  await source.current();
  let hosts = new Set<string>();
  const server = Deno.serve(
    { hostname, port, signal, onListen() {} },
    (request) => handle(source, request, hosts),
  );
  const addr = server.addr as Deno.NetAddr;
  hosts = allowedHosts(addr.hostname, addr.port);
  const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
  return {
    url: `http://${host}:${addr.port}/`,
    finished: server.finished,
    shutdown: () => server.shutdown(),
    async [Symbol.asyncDispose]() {
      await server.shutdown().catch(() => {});
    },
  };
}
