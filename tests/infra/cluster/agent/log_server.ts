/**
 * The kubelet port of the node agent: HTTPS `GET /containerLogs/{namespace}/{pod}/{container}`,
 * which kube-apiserver proxies `kubectl logs` to. Supports `follow`, `tailLines`,
 * `limitBytes` and `previous`. It listens on loopback only and does not authenticate the
 * apiserver's client certificate (Deno.serve cannot request one).
 *
 * @module
 */

import type { ContainerLogs } from "./pod_worker.ts";

/** Finds the logs of a container. */
export type LogLookup = (
  namespace: string,
  pod: string,
  container: string,
) => ContainerLogs | undefined;

/** Options of {@link serveLogs}. */
export interface ServeLogsOptions {
  hostname: string;
  port: number;
  /** PEM serving certificate and key. */
  cert: string;
  key: string;
  lookup: LogLookup;
  /** Aborts the server. */
  signal: AbortSignal;
}

const FOLLOW_POLL_MS = 200;

/**
 * Serve container logs over HTTPS.
 *
 * @param options Address, TLS material, the log lookup and an abort signal.
 * @returns The server.
 */
export function serveLogs(options: ServeLogsOptions): Deno.HttpServer {
  const { hostname, port, cert, key, lookup, signal } = options;
  return Deno.serve({ hostname, port, cert, key, signal, onListen: () => {} }, (request) => {
    const url = new URL(request.url);
    if (url.pathname === "/healthz") return new Response("ok");
    const match = url.pathname.match(/^\/containerLogs\/([^/]+)\/([^/]+)\/([^/]+)\/?$/);
    if (!match || request.method !== "GET") {
      return new Response("404 page not found\n", { status: 404 });
    }
    const [namespace, pod, container] = match.slice(1).map(decodeURIComponent) as [
      string,
      string,
      string,
    ];
    const logs = lookup(namespace, pod, container);
    if (!logs) {
      return new Response(
        `pod ${namespace}/${pod} has no container "${container}" on this node\n`,
        {
          status: 404,
        },
      );
    }
    const params = url.searchParams;
    const previous = params.get("previous") === "true";
    const file = previous ? logs.previous : logs.current;
    if (!file) {
      const message = previous
        ? `previous terminated container "${container}" in pod "${pod}" not found`
        : logs.waiting ?? `container "${container}" in pod "${pod}" has no logs`;
      return new Response(`${message}\n`, { status: 400 });
    }
    const tail = params.has("tailLines") ? Number(params.get("tailLines")) : undefined;
    const limit = params.has("limitBytes") ? Number(params.get("limitBytes")) : undefined;
    const follow = params.get("follow") === "true" && !previous;
    const body = logStream(file, {
      tail,
      limit,
      follow: follow ? () => lookup(namespace, pod, container)?.running ?? false : undefined,
    });
    return new Response(body, { headers: { "content-type": "text/plain" } });
  });
}

interface StreamOptions {
  tail: number | undefined;
  limit: number | undefined;
  /** When set, keep streaming while it returns `true`. */
  follow: (() => boolean) | undefined;
}

function logStream(path: string, options: StreamOptions): ReadableStream<Uint8Array> {
  const { tail, limit, follow } = options;
  let sent = 0;
  let cancelled = false;
  return new ReadableStream<Uint8Array>({
    async start(controller) {
      const push = (bytes: Uint8Array): boolean => {
        const room = limit === undefined ? bytes.length : Math.max(0, limit - sent);
        const chunk = bytes.subarray(0, room);
        if (chunk.length > 0) controller.enqueue(chunk);
        sent += chunk.length;
        return limit === undefined || sent < limit;
      };
      let file: Deno.FsFile | undefined;
      try {
        const initial = await Deno.readFile(path);
        let more = push(tail === undefined ? initial : lastLines(initial, tail));
        if (more && follow) {
          file = await Deno.open(path);
          await file.seek(initial.length, Deno.SeekMode.Start);
          const buffer = new Uint8Array(64 * 1024);
          while (more && !cancelled) {
            const running = follow();
            let read: number | null;
            while (more && (read = await file.read(buffer)) !== null) {
              more = push(buffer.slice(0, read));
            }
            if (!running) break;
            await new Promise((resolve) => setTimeout(resolve, FOLLOW_POLL_MS));
          }
        }
        if (!cancelled) controller.close();
      } catch (error) {
        if (!cancelled) controller.error(error);
      } finally {
        file?.close();
      }
    },
    cancel() {
      cancelled = true; // the client went away
    },
  });
}

/** The last `count` lines of `bytes` (a final line without newline counts as a line). */
function lastLines(bytes: Uint8Array, count: number): Uint8Array {
  if (count <= 0) return new Uint8Array();
  let end = bytes.length;
  if (end > 0 && bytes[end - 1] === 0x0a) end -= 1;
  let seen = 0;
  for (let i = end - 1; i >= 0; i--) {
    if (bytes[i] === 0x0a && ++seen === count) return bytes.subarray(i + 1);
  }
  return bytes;
}
