/**
 * Worker processes on this machine, for the backends whose workers are
 * child processes of the master (local processes, warm workers, containers
 * started by a CLI): starting one, stopping it (SIGTERM, then SIGKILL after
 * a grace time), saying in a plain sentence how it ended, and its output —
 * written to a log file as it comes, the end of standard error kept to
 * explain a crash, and the log stored as `jobs/<key>/logs/<task>/<attempt>.log`.
 *
 * @module
 */

import { concatBytes } from "../bytes.ts";
import type { Storage } from "../storage/storage.ts";
import { EXIT_STOPPED } from "../worker/exit_codes.ts";
import { DEFAULTS } from "../options.ts";
import { type ExitReason, type JobContext, WORKER_EXIT_MS } from "./backend.ts";

/** Bytes of standard error kept to explain a crash. */
export const TAIL_BYTES = 2000;

/**
 * Start a worker process with its output piped. Workers print no colour
 * codes: their output goes to logs.
 *
 * @throws {Deno.errors.NotFound} The program does not exist.
 */
export function spawnWorker(
  program: string,
  args: string[],
  env: Readonly<Record<string, string>>,
  stdin: "null" | "piped" = "null",
): Deno.ChildProcess {
  return new Deno.Command(program, {
    args,
    env: { NO_COLOR: "1", ...env },
    stdin,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/**
 * Stop a process: SIGTERM now (the worker fires its task's signal and gives
 * it the job's grace period), SIGKILL once `graceMs` have passed. Returns
 * a function that cancels the SIGKILL (call it when the process exited).
 */
export function stopProcess(child: Deno.ChildProcess, graceMs: number): () => void {
  const signal = (name: Deno.Signal) => {
    try {
      child.kill(name);
    } catch { /* already gone */ }
  };
  signal(graceMs > 0 ? "SIGTERM" : "SIGKILL");
  const timer = setTimeout(() => signal("SIGKILL"), graceMs);
  return () => clearTimeout(timer);
}

/**
 * How long a stopped worker may take before it is killed: the job's grace
 * period plus {@linkcode WORKER_EXIT_MS}, unless a backend option says otherwise.
 */
export function killGrace(job: JobContext, override: number | undefined): number {
  return override ?? (job.graceMs ?? DEFAULTS.graceMs) + WORKER_EXIT_MS;
}

const SIGNALS: Record<number, Deno.Signal> = {
  1: "SIGHUP",
  2: "SIGINT",
  6: "SIGABRT",
  9: "SIGKILL",
  11: "SIGSEGV",
  15: "SIGTERM",
};

/**
 * How a worker ended, as a reason and a plain sentence. A process killed by
 * a signal (or a container CLI exiting with 128 + N) was killed from
 * outside or ran out of memory; with `cli` set, the codes 125 to 127 mean
 * the container CLI itself failed and the worker never ran. A worker that
 * stopped on SIGTERM (exit code 143, or the signal itself) was disrupted:
 * preempted, drained or stopped, not failed.
 */
export function describeExit(
  status: { code: number; signal?: Deno.Signal | null },
  stderrTail: string,
  cli?: string,
): { reason: ExitReason; detail: string } {
  const { code } = status;
  const signal = status.signal ??
    (cli && code > 128 && code <= 128 + 64 ? SIGNALS[code - 128] ?? `signal ${code - 128}` : null);
  if (signal === "SIGTERM" || signal === "SIGINT" || (!signal && code === EXIT_STOPPED)) {
    return {
      reason: "disrupted",
      detail: `stopped by ${
        signal ?? "SIGTERM"
      } from outside kubeface (a preemption, a drain, a container stop) before it stored a result; not counted as a failure`,
    };
  }
  if (signal) {
    return {
      reason: "killed",
      detail: `killed by ${signal} (out of memory, or killed from outside)${
        stderrTail ? `; last output: ${stderrTail}` : ""
      }`,
    };
  }
  const said = stderrTail ? `: ${stderrTail}` : "";
  if (cli && code >= 125 && code <= 127) {
    return { reason: "unstartable", detail: `'${cli} run' failed with code ${code}${said}` };
  }
  return { reason: "exited", detail: `exited with code ${code}${said}` };
}

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
      if (keepTail) tail = concatBytes([tail, chunk]).slice(-TAIL_BYTES);
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
 * Store an attempt's log under `key`: the text, or the file at `path`
 * (which is deleted). A log is stored when the attempt printed something or
 * did not succeed, so every failure has one to look at; most tasks succeed
 * and print nothing. A failed upload is ignored: logs are a convenience and
 * must not fail the attempt.
 */
export async function storeLog(
  storage: Storage,
  key: string,
  log: { text: string } | { path: string },
  succeeded: boolean,
): Promise<void> {
  try {
    if ("text" in log) {
      if (log.text || !succeeded) {
        await storage.put(key, new TextEncoder().encode(log.text), { contentType: "text/plain" });
      }
    } else if (!succeeded || (await Deno.stat(log.path)).size > 0) {
      const file = await Deno.open(log.path, { read: true });
      await storage.put(key, file.readable, { contentType: "text/plain" });
    }
  } catch {
    // See above.
  } finally {
    if ("path" in log) await Deno.remove(log.path).catch(() => {});
  }
}
