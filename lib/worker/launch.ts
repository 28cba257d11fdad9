/**
 * The command line that starts a worker, shared by every backend: the Deno
 * flags (permissions for the worker and, inside it, for the task thread) and
 * the worker's own arguments.
 *
 * @module
 */

import { dirname } from "node:path";
import {
  mergePermissions,
  parsePermissions,
  permissionFlags,
  storagePermissions,
} from "../permissions.ts";

/** What one worker is started for. */
export interface WorkerCommandOptions {
  /** Path or URL of `worker.ts` as the process will see it. */
  worker: string;
  /** A `deno.json` to run with (the project's import map), if any. */
  config?: string;
  /** Storage root URL as the process will see it. */
  storageUrl: string;
  job: string;
  /** The attempt to run; without one the worker serves attempts from its input. */
  run?: { task: number; attempt: string };
  /** The worker's private writable directory, as the process will see it. */
  scratch: string;
  /** Deno permission flags the user granted the task. */
  permissions: readonly string[];
}

/**
 * Arguments for `deno` that run one attempt: the process may reach storage
 * and its scratch directory; the task thread inside it gets only what the
 * user granted, plus the scratch directory.
 *
 * @throws {TypeError} A permission flag is malformed.
 */
export function workerArgs(options: WorkerCommandOptions): string[] {
  const granted = parsePermissions(options.permissions);
  const code = /^[a-z][a-z0-9+.-]*:/i.test(options.worker) ? [] : [dirname(options.worker)];
  const process = mergePermissions(
    granted,
    storagePermissions(options.storageUrl, options.scratch),
    { read: code }, // the task thread's own module
  );
  return [
    "run",
    "--no-check",
    "--no-prompt",
    "--quiet",
    "--unstable-worker-options",
    ...(options.config ? [`--config=${options.config}`] : []),
    ...permissionFlags(process),
    options.worker,
    ...["--storage", options.storageUrl, "--job", options.job, "--scratch", options.scratch],
    ...(options.run
      ? ["--task", String(options.run.task), "--attempt", options.run.attempt]
      : ["--serve"]),
    ...["--permissions", JSON.stringify(granted)],
  ];
}
