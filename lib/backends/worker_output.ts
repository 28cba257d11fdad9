/**
 * A worker process's output, for backends whose workers are child processes
 * of the master (local processes, containers started by a CLI): written to a
 * log file as it comes, the end of standard error kept to explain a crash,
 * and the log stored as `jobs/<key>/logs/<task>/<attempt>.log` when it ends.
 *
 * @module
 */

import type { Storage } from "../storage/storage.ts";

/** Bytes of standard error kept to explain a crash. */
export const TAIL_BYTES = 2000;

/** How a worker process ended and the end of what it wrote to standard error. */
export interface WorkerOutcome {
  status: Deno.CommandStatus;
  /** The last {@linkcode TAIL_BYTES} of standard error, decoded and trimmed. */
  stderrTail: string;
}

/**
 * Copy a child's standard output and error into `logPath` until it exits.
 * The child must have been spawned with both piped.
 */
export async function collectOutput(
  child: Deno.ChildProcess,
  logPath: string,
): Promise<WorkerOutcome> {
  const log = await Deno.open(logPath, { write: true, create: true, truncate: true });
  let tail = new Uint8Array(0);
  const copy = async (stream: ReadableStream<Uint8Array>, keepTail: boolean) => {
    for await (const chunk of stream) {
      await log.write(chunk);
      if (keepTail) {
        const joined = new Uint8Array(tail.length + chunk.length);
        joined.set(tail);
        joined.set(chunk, tail.length);
        tail = joined.slice(-TAIL_BYTES);
      }
    }
  };
  try {
    const [status] = await Promise.all([
      child.status,
      copy(child.stdout, false),
      copy(child.stderr, true),
    ]);
    return { status, stderrTail: new TextDecoder().decode(tail).trim() };
  } finally {
    log.close();
  }
}

/**
 * Store a log file under `key` and delete it. A failed upload is ignored:
 * logs are a convenience and must not fail the attempt.
 */
export async function storeLog(storage: Storage, key: string, logPath: string): Promise<void> {
  try {
    const file = await Deno.open(logPath, { read: true });
    await storage.put(key, file.readable, { contentType: "text/plain" });
  } catch {
    // See above.
  }
  await Deno.remove(logPath).catch(() => {});
}
