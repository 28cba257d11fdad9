/**
 * How a worker is launched, described once: the backends turn a
 * {@linkcode WorkerLaunch} into a command line (local processes,
 * containers) or an environment (Kubernetes pods), and `worker.ts` reads
 * it back from either with {@linkcode parseWorkerLaunch}.
 *
 * @module
 */

import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import {
  mergePermissions,
  permissionFlags,
  type PermissionSet,
  storagePermissions,
} from "../permissions.ts";

/** What a worker process runs: one attempt, one index of a batch run, or attempts from its input. */
export type WorkerMode =
  | { task: number; attempt: string }
  /** The index `JOB_COMPLETION_INDEX` of the run map `runs/<run>.json`. */
  | { run: string }
  /** One JSON line per attempt on standard input (the local warm pool). */
  | { serve: true }
  /** Attempts offered in storage, one after another (a warm pod; see lib/worker/pool.ts). */
  | { pool: true };

/** Everything a worker process is started with. */
export interface WorkerLaunch {
  /** Storage root URL, as the worker sees it. */
  storageUrl: string;
  /** Job key. */
  job: string;
  /** A writable directory, as the worker sees it; the worker makes a private one inside. */
  scratch: string;
  /** What the task may do. */
  permissions: PermissionSet;
  mode: WorkerMode;
  /**
   * Time a stopped attempt's task gets to checkpoint and return, in milliseconds.
   *
   * @default {25000}
   */
  graceMs?: number;
}

/** Each setting's flag and environment variable. */
const SETTINGS = {
  storage: "KUBEFACE_STORAGE",
  job: "KUBEFACE_JOB",
  scratch: "KUBEFACE_SCRATCH",
  permissions: "KUBEFACE_PERMISSIONS",
  task: "KUBEFACE_TASK",
  attempt: "KUBEFACE_ATTEMPT",
  run: "KUBEFACE_RUN",
  serve: "KUBEFACE_SERVE",
  pool: "KUBEFACE_POOL",
  grace: "KUBEFACE_GRACE_MS",
} as const;

type Setting = keyof typeof SETTINGS;

/** The settings of a launch, by name, as text. */
function settings(launch: WorkerLaunch): Partial<Record<Setting, string>> {
  const mode = launch.mode;
  return {
    storage: launch.storageUrl,
    job: launch.job,
    scratch: launch.scratch,
    permissions: JSON.stringify(launch.permissions),
    ...("task" in mode ? { task: String(mode.task), attempt: mode.attempt } : {}),
    ...("run" in mode ? { run: mode.run } : {}),
    ...("serve" in mode ? { serve: "1" } : {}),
    ...("pool" in mode ? { pool: "1" } : {}),
    ...(launch.graceMs !== undefined ? { grace: String(launch.graceMs) } : {}),
  };
}

/** The worker's own arguments, e.g. `--storage URL --job KEY …`. */
export function workerFlags(launch: WorkerLaunch): string[] {
  return Object.entries(settings(launch)).flatMap(([name, value]) =>
    name === "serve" || name === "pool" ? [`--${name}`] : [`--${name}`, value!]
  );
}

/** The same as environment variables, e.g. `KUBEFACE_STORAGE=URL`. */
export function workerEnv(launch: WorkerLaunch): Record<string, string> {
  return Object.fromEntries(
    Object.entries(settings(launch)).map(([name, value]) => [SETTINGS[name as Setting], value!]),
  );
}

/** Usage of `worker.ts`, for its error messages. */
export const WORKER_USAGE =
  "usage: worker.ts --storage URL --job KEY --scratch DIR (--task N --attempt ID | --run NAME | --serve | --pool) [--permissions JSON] [--grace MS]; every flag may come from its KUBEFACE_* variable instead";

/**
 * Read a launch from a worker's arguments, each falling back on its
 * environment variable.
 *
 * @param args `--name value` and `--name=value` pairs, `--serve` and `--pool`.
 * @param env Reads a variable (none when the process may not read the environment).
 * @throws {TypeError} A setting is missing or malformed; the message ends with the usage.
 */
export function parseWorkerLaunch(
  args: readonly string[],
  env: (name: string) => string | undefined,
): WorkerLaunch {
  const given: Partial<Record<Setting, string>> = {};
  for (let i = 0; i < args.length; i++) {
    const match = /^--([a-z]+)(?:=(.*))?$/.exec(args[i]!);
    const name = match?.[1] as Setting | undefined;
    if (!match || !name || !(name in SETTINGS)) {
      throw new TypeError(`unknown argument '${args[i]}'; ${WORKER_USAGE}`);
    }
    given[name] = name === "serve" || name === "pool" ? "1" : match[2] ?? args[++i];
    if (given[name] === undefined) {
      throw new TypeError(`--${name} needs a value; ${WORKER_USAGE}`);
    }
  }
  const get = (name: Setting) => given[name] ?? env(SETTINGS[name]);
  const [storageUrl, job, scratch] = [get("storage"), get("job"), get("scratch")];
  if (!storageUrl || !job || !scratch) {
    throw new TypeError(`--storage, --job and --scratch are required; ${WORKER_USAGE}`);
  }
  let permissions: PermissionSet;
  try {
    permissions = JSON.parse(get("permissions") ?? "{}");
  } catch {
    throw new TypeError(`--permissions must be JSON, not '${get("permissions")}'`);
  }
  const grace = get("grace");
  if (grace !== undefined && !/^\d+$/.test(grace)) {
    throw new TypeError(`--grace must be whole milliseconds, not '${grace}'`);
  }
  const [task, attempt, run] = [get("task"), get("attempt"), get("run")];
  let mode: WorkerMode;
  if (get("serve")) mode = { serve: true };
  else if (get("pool")) mode = { pool: true };
  else if (run) mode = { run };
  else if (task !== undefined && /^\d+$/.test(task) && attempt) {
    mode = { task: Number(task), attempt };
  } else {
    throw new TypeError(`give --task and --attempt, --run, --serve or --pool; ${WORKER_USAGE}`);
  }
  return {
    storageUrl,
    job,
    scratch,
    permissions,
    mode,
    ...(grace !== undefined ? { graceMs: Number(grace) } : {}),
  };
}

/** Where the worker's code is, as the process sees it. */
export interface WorkerFiles {
  /** Path or URL of `worker.ts`. */
  worker: string;
  /** A `deno.json` to run with (the project's import map), if any. */
  config?: string;
  /** Every dependency is in Deno's cache already (an image): never fetch code. */
  cachedOnly?: boolean;
}

/** This checkout's (or installation's) `worker.ts` and `deno.json`, for workers on this machine. */
export function localWorkerFiles(): WorkerFiles {
  const root = new URL("../../", import.meta.url);
  const path = (name: string) =>
    root.protocol === "file:" ? fileURLToPath(new URL(name, root)) : new URL(name, root).href;
  return { worker: path("worker.ts"), config: path("deno.json") };
}

/**
 * Arguments for `deno` that start a worker, up to the worker's path; its
 * settings follow as {@linkcode workerFlags} or come as {@linkcode workerEnv}.
 * The process may reach its storage, its scratch directory and its own
 * code; the task thread inside it gets only what the user granted, plus the
 * scratch directory.
 */
export function denoRunFlags(launch: WorkerLaunch, files: WorkerFiles): string[] {
  const code = /^[a-z][a-z0-9+.-]*:/i.test(files.worker) ? [] : [dirname(files.worker)];
  const process = mergePermissions(
    launch.permissions,
    storagePermissions(launch.storageUrl, launch.scratch),
    // The task thread's own module, and the settings a pod gives in variables.
    { read: code, env: ["KUBEFACE_*", "JOB_COMPLETION_INDEX"] },
  );
  return [
    "run",
    ...(files.cachedOnly ? ["--cached-only"] : []),
    "--no-check",
    "--no-prompt",
    "--quiet",
    "--unstable-worker-options",
    ...(files.config ? [`--config=${files.config}`] : []),
    ...permissionFlags(process),
    files.worker,
  ];
}

/** Arguments for `deno` that start a worker, its settings given as flags. */
export function denoRunArgs(launch: WorkerLaunch, files: WorkerFiles): string[] {
  return [...denoRunFlags(launch, files), ...workerFlags(launch)];
}
