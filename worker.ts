// deno-lint-ignore-file no-console
/**
 * The worker entry point: runs one attempt of one task of a job and exits
 * with a code that tells a task error apart from an infrastructure failure
 * (see `lib/worker/exit_codes.ts`). Backends start it; users do not.
 *
 * ```sh
 * deno run --no-check --unstable-worker-options worker.ts --storage URL --job KEY \
 *   --task N --attempt ID --scratch DIR [--permissions JSON]
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
import { EXIT_INFRASTRUCTURE, EXIT_USAGE } from "./lib/worker/exit_codes.ts";
import { runWorker } from "./lib/worker/run.ts";
import { openStorage } from "./lib/storage/storage.ts";

function env(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined; // no --allow-env: flags only
  }
}

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: Deno.args,
      options: {
        storage: { type: "string", default: env("KUBEFACE_STORAGE") },
        job: { type: "string", default: env("KUBEFACE_JOB") },
        task: { type: "string", default: env("KUBEFACE_TASK") },
        attempt: { type: "string", default: env("KUBEFACE_ATTEMPT") },
        scratch: { type: "string", default: env("KUBEFACE_SCRATCH") },
        permissions: { type: "string", default: env("KUBEFACE_PERMISSIONS") ?? "{}" },
      },
    }));
  } catch (error) {
    console.error(`kubeface worker: ${errorMessage(error)}`);
    return EXIT_USAGE;
  }
  const { storage: url, job, task, attempt, scratch } = values;
  let permissions: PermissionSet;
  try {
    permissions = JSON.parse(values.permissions ?? "{}");
  } catch {
    console.error(`kubeface worker: --permissions must be JSON, not '${values.permissions}'`);
    return EXIT_USAGE;
  }
  if (!url || !job || task === undefined || !attempt || !scratch || !/^\d+$/.test(task)) {
    console.error(
      "kubeface worker: usage: worker.ts --storage URL --job KEY --task N --attempt ID --scratch DIR",
    );
    return EXIT_USAGE;
  }
  try {
    await using storage = await openStorage(url);
    return await runWorker({ storage, job, task: Number(task), attempt, scratch, permissions });
  } catch (error) {
    console.error(
      `kubeface worker: task ${task} of job '${job}' could not run: ${
        error instanceof Error ? error.stack ?? error.message : String(error)
      }`,
    );
    return EXIT_INFRASTRUCTURE;
  }
}

if (import.meta.main) {
  Deno.exit(await main());
}
