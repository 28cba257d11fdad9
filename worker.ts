// deno-lint-ignore-file no-console
/**
 * The worker entry point: runs attempts of a job's tasks and exits with a
 * code that tells a task error apart from an infrastructure failure (see
 * `lib/worker/exit_codes.ts`). Backends start it; users do not.
 *
 * ```sh
 * # one attempt
 * deno run --no-check --unstable-worker-options worker.ts --storage URL --job KEY \
 *   --scratch DIR --task N --attempt ID [--permissions JSON]
 * # many attempts, one JSON line {"task": N, "attempt": ID} each on stdin (the warm pool)
 * deno run --no-check --unstable-worker-options worker.ts --storage URL --job KEY \
 *   --scratch DIR --serve [--permissions JSON]
 * ```
 *
 * Every flag can also come from the environment: `KUBEFACE_STORAGE`,
 * `KUBEFACE_JOB`, `KUBEFACE_TASK`, `KUBEFACE_ATTEMPT`, `KUBEFACE_SCRATCH`,
 * `KUBEFACE_PERMISSIONS`. `--permissions` is the JSON of what the task may
 * do (e.g. `{"net":true,"read":["/data"]}`); the task runs in a thread with
 * just that and its scratch directory, whatever the process itself may do.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { errorMessage } from "./lib/errors.ts";
import type { PermissionSet } from "./lib/permissions.ts";
import { openStorage } from "./lib/storage/storage.ts";
import { EXIT_INFRASTRUCTURE, EXIT_USAGE } from "./lib/worker/exit_codes.ts";
import { serve as serveRequests } from "./lib/worker/serve.ts";
import { type AttemptOutcome, JobWorker, type RunOptions } from "./lib/worker/run.ts";

const USAGE =
  "usage: worker.ts --storage URL --job KEY --scratch DIR (--task N --attempt ID | --run NAME | --serve) [--permissions JSON]";

function env(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined; // no --allow-env: flags only
  }
}

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
    console.error(
      `kubeface worker: task ${task} of job '${job}' could not run: ${
        error instanceof Error ? error.stack ?? error.message : String(error)
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
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        storage: { type: "string", default: env("KUBEFACE_STORAGE") },
        job: { type: "string", default: env("KUBEFACE_JOB") },
        task: { type: "string", default: env("KUBEFACE_TASK") },
        attempt: { type: "string", default: env("KUBEFACE_ATTEMPT") },
        scratch: { type: "string", default: env("KUBEFACE_SCRATCH") },
        permissions: { type: "string", default: env("KUBEFACE_PERMISSIONS") ?? "{}" },
        run: { type: "string", default: env("KUBEFACE_RUN") },
        serve: { type: "boolean" },
      },
    }));
  } catch (error) {
    console.error(`kubeface worker: ${errorMessage(error)}; ${USAGE}`);
    return EXIT_USAGE;
  }
  const { storage: url, job, task, attempt: id, scratch, serve, run } = values;
  const single = task !== undefined && /^\d+$/.test(task) && id;
  if (!url || !job || !scratch || (!serve && !single && !run)) {
    console.error(`kubeface worker: ${USAGE}`);
    return EXIT_USAGE;
  }
  let permissions: PermissionSet;
  try {
    permissions = JSON.parse(values.permissions ?? "{}");
  } catch {
    console.error(`kubeface worker: --permissions must be JSON, not '${values.permissions}'`);
    return EXIT_USAGE;
  }
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
  const worker = new JobWorker({ storage, job, scratch: own, permissions });
  try {
    if (run) {
      const index = Number(env("JOB_COMPLETION_INDEX"));
      const spec = await worker.indexed(run, index).catch((error) => {
        console.error(`kubeface worker: ${errorMessage(error)}`);
        return undefined;
      });
      if (!spec) return EXIT_INFRASTRUCTURE;
      console.error(
        `kubeface worker: task ${spec.task}, attempt ${spec.attempt} (index ${index} of ${run})`,
      );
      return (await attempt(worker, spec.task, spec.attempt, job)).code;
    }
    if (!serve) return (await attempt(worker, Number(task), id!, job)).code;
    // Get ready before the first request; a failure here shows at the first attempt.
    await worker.warmUp().catch(() => {});
    const encoder = new TextEncoder();
    await serveRequests(
      ({ task, attempt: id, first }) => attempt(worker, task, id, job, { first }),
      Deno.stdin.readable,
      (line) => {
        // One synchronous write: cheaper than an asynchronous one, and whole.
        const bytes = encoder.encode(line);
        let written = 0;
        while (written < bytes.length) written += Deno.stdout.writeSync(bytes.subarray(written));
      },
    );
    return 0;
  } finally {
    worker.close();
    await storage[Symbol.asyncDispose]();
    await Deno.remove(own, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) {
  // As PID 1 of a container (the worker image) a process ignores SIGTERM unless it handles it;
  // elsewhere this is what SIGTERM does anyway. (The pods' bootstrap does the same.)
  if (Deno.build.os !== "windows") Deno.addSignalListener("SIGTERM", () => Deno.exit(143));
  Deno.exit(await main(Deno.args));
}
