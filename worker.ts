// deno-lint-ignore-file no-console
/**
 * The worker entry point: runs attempts of a job's tasks and exits with a
 * code that tells a task error apart from an infrastructure failure (see
 * `lib/worker/exit_codes.ts`). Backends start it; users do not.
 *
 * ```sh
 * # one attempt
 * deno run --no-check --unstable-worker-options worker.ts --storage URL --job KEY \
 *   --scratch DIR --task N --attempt ID [--permissions JSON] [--grace MS]
 * # many attempts, one JSON line {"task": N, "attempt": ID} each on stdin (the warm pool)
 * deno run --no-check --unstable-worker-options worker.ts --storage URL --job KEY \
 *   --scratch DIR --serve [--permissions JSON] [--grace MS]
 * # many attempts, offered in storage (a warm pod; see lib/worker/pool.ts)
 * deno run --no-check --unstable-worker-options worker.ts --storage URL --job KEY \
 *   --scratch DIR --pool [--permissions JSON] [--grace MS]
 * ```
 *
 * SIGTERM or SIGINT stops the running attempt: the task's `ctx.signal`
 * fires and it gets `--grace` milliseconds (25,000 by default) to
 * checkpoint and return; then its thread is killed and the worker exits
 * with 143 (`EXIT_STOPPED`). A serving worker takes a `{"stop": ID}` line
 * the same way, and goes on with its next attempt.
 *
 * Every flag can also come from the environment (`KUBEFACE_STORAGE`,
 * `KUBEFACE_JOB`, …; see `lib/worker/launch.ts`). `--permissions` is the JSON of what the task may
 * do (e.g. `{"net":true,"read":["/data"]}`); the task runs in a thread with
 * just that and its scratch directory, whatever the process itself may do.
 *
 * @module
 */

import { readEnv } from "./lib/env.ts";
import { CorruptObjectError, errorMessage } from "./lib/errors.ts";
import { openStorage } from "./lib/storage/storage.ts";
import { EXIT_INFRASTRUCTURE, EXIT_STOPPED, EXIT_USAGE } from "./lib/worker/exit_codes.ts";
import { parseWorkerLaunch, type WorkerLaunch } from "./lib/worker/launch.ts";
import { stderrMark } from "./lib/worker/protocol.ts";
import { serve as serveRequests } from "./lib/worker/serve.ts";
import { type PoolTimings, runPool } from "./lib/worker/pool.ts";
import { JobLayout } from "./lib/format/layout.ts";
import {
  AttemptCrashError,
  type AttemptOutcome,
  JobWorker,
  type RunOptions,
} from "./lib/worker/run.ts";

/** Run one attempt; infrastructure failures become their exit code. */
async function attempt(
  worker: JobWorker,
  task: number,
  id: string,
  job: string,
  options?: RunOptions,
): Promise<AttemptOutcome> {
  try {
    return await worker.run(task, id, options);
  } catch (error) {
    // Damaged objects and crashes are said plainly; anything else keeps its stack.
    const plain = error instanceof AttemptCrashError || error instanceof CorruptObjectError;
    console.error(
      `kubeface worker: task ${task} of job '${job}' could not run: ${
        plain ? errorMessage(error) : error instanceof Error ? error.stack : String(error)
      }`,
    );
    return { code: EXIT_INFRASTRUCTURE };
  }
}

/**
 * Run the worker with command-line arguments (flags, falling back on the
 * environment); returns the exit code. A bundled worker (`worker.js` in a
 * pod) is started by calling this.
 */
export async function main(args: string[]): Promise<number> {
  let launch: WorkerLaunch;
  try {
    launch = parseWorkerLaunch(args, readEnv);
  } catch (error) {
    console.error(`kubeface worker: ${errorMessage(error)}`);
    return EXIT_USAGE;
  }
  const { storageUrl: url, job, scratch, permissions, mode, graceMs } = launch;
  // SIGTERM (a pod deleted or preempted, a container stopped, the master
  // stopping an attempt) and SIGINT (Ctrl-C in the master's terminal) stop
  // the running attempt: its task's signal fires and it gets the grace period.
  const started: { worker?: JobWorker } = {};
  const stopping = new AbortController();
  const onSignal = (name: Deno.Signal) => () => {
    if (!stopping.signal.aborted) {
      console.error(`kubeface worker: ${name}: stopping the running attempt`);
    }
    stopping.abort();
    started.worker?.stop(`the attempt is being stopped (${name})`);
  };
  const handlers = (["SIGTERM", "SIGINT"] as const).map((name) => {
    const handler = onSignal(name);
    Deno.addSignalListener(name, handler);
    return () => Deno.removeSignalListener(name, handler);
  });
  let storage;
  try {
    storage = await openStorage(url);
  } catch (error) {
    console.error(`kubeface worker: cannot open storage '${url}': ${errorMessage(error)}`);
    return EXIT_INFRASTRUCTURE;
  }
  // A private directory inside the given one: pods of a test node share /tmp.
  let own: string;
  try {
    await Deno.mkdir(scratch, { recursive: true });
    own = await Deno.makeTempDir({ dir: scratch, prefix: "worker-" });
  } catch (error) {
    console.error(
      `kubeface worker: cannot write to the scratch directory '${scratch}': ${errorMessage(error)}`,
    );
    return EXIT_INFRASTRUCTURE;
  }
  const worker = started.worker = new JobWorker({
    storage,
    job,
    scratch: own,
    permissions,
    graceMs,
    warn: (message) => console.error(`kubeface worker: warning: ${message}`),
  });
  try {
    if ("run" in mode) {
      const index = Number(readEnv("JOB_COMPLETION_INDEX"));
      const spec = await worker.indexed(mode.run, index).catch((error) => {
        console.error(`kubeface worker: ${errorMessage(error)}`);
        return undefined;
      });
      if (!spec) return EXIT_INFRASTRUCTURE;
      if (stopping.signal.aborted) return EXIT_STOPPED;
      console.error(
        `kubeface worker: task ${spec.task}, attempt ${spec.attempt} (index ${index} of ${mode.run})`,
      );
      return (await attempt(worker, spec.task, spec.attempt, job)).code;
    }
    if ("task" in mode) {
      if (stopping.signal.aborted) return EXIT_STOPPED;
      return (await attempt(worker, mode.task, mode.attempt, job)).code;
    }
    if ("pool" in mode) {
      await worker.warmUp().catch(() => {});
      const pod = readEnv("KUBEFACE_POD");
      const timings = JSON.parse(readEnv("KUBEFACE_POOL_TIMINGS") ?? "{}") as PoolTimings;
      return await runPool({
        ...timings,
        storage,
        layout: new JobLayout(job),
        run: async (spec) => (await attempt(worker, spec.task, spec.attempt, job)).code,
        stop: (reason, id) => worker.stop(reason, id),
        signal: stopping.signal,
        ...(pod ? { pod } : {}),
        log: (line) => console.error(`kubeface worker: ${line}`),
      }).catch((error) => {
        console.error(`kubeface worker: the warm pod stops: ${errorMessage(error)}`);
        return EXIT_INFRASTRUCTURE;
      });
    }
    // Get ready before the first request; a failure here shows at the first attempt.
    await worker.warmUp().catch(() => {});
    const encoder = new TextEncoder();
    // One synchronous write: cheaper than an asynchronous one, and whole.
    const writeAll = (out: typeof Deno.stdout, text: string) => {
      const bytes = encoder.encode(text);
      let written = 0;
      while (written < bytes.length) written += out.writeSync(bytes.subarray(written));
    };
    await serveRequests(
      async ({ task, attempt: id, first }) => {
        writeAll(Deno.stderr, stderrMark("start", id));
        try {
          return await attempt(worker, task, id, job, { first });
        } finally {
          writeAll(Deno.stderr, stderrMark("end", id));
        }
      },
      Deno.stdin.readable,
      (line) => writeAll(Deno.stdout, line),
      { stop: (id, reason) => worker.stop(reason, id), signal: stopping.signal },
    );
    return 0;
  } finally {
    for (const remove of handlers) remove();
    worker.close();
    await storage[Symbol.asyncDispose]();
    await Deno.remove(own, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
