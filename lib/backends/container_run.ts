/**
 * The `run` command line of one attempt's container: what the container is
 * given and nothing more. It sees the image, a private `/tmp` (its scratch
 * directory), the job's local storage mounted at the same absolute path (so
 * the storage URL is unchanged), the paths the user granted with
 * `--allow-read=PATH` / `--allow-write=PATH` (mounted at the same path,
 * read-only unless writable), and the environment variables it needs. Its
 * root file system is read-only.
 *
 * @module
 */

import { isAbsolute, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { readEnv } from "../env.ts";
import { BackendError } from "../errors.ts";
import { IMAGE_WORKER_FILES } from "../image/context.ts";
import type { PermissionSet } from "../permissions.ts";
import { storageWorkerEnv } from "../storage/worker_env.ts";
import { denoRunArgs } from "../worker/launch.ts";
import type { AttemptSpec, JobContext } from "./backend.ts";
import { killGrace } from "./worker_process.ts";

/** The scratch directory inside a container: a private tmpfs. */
export const CONTAINER_SCRATCH = "/tmp";

/** Variables the container CLI reads itself; a job's values for them go on its command line. */
const CLI_OWN_ENV = new Set([
  "PATH",
  "HOME",
  "TMPDIR",
  "LD_LIBRARY_PATH",
  "LD_PRELOAD",
  "XDG_RUNTIME_DIR",
  "XDG_CONFIG_HOME",
  "XDG_DATA_HOME",
  "DOCKER_HOST",
  "DOCKER_CONFIG",
  "DOCKER_CONTEXT",
  "CONTAINER_HOST",
  "CONTAINERS_CONF",
  "CONTAINERS_STORAGE_CONF",
]);

/** Everything that shapes one container besides the attempt. */
export interface RunSettings {
  /** Image to run. */
  image: string;
  /** Network mode, e.g. `"host"`. */
  network: string;
  /** `--user`/`--userns`/`--cap-add` flags that let the container's user write the storage. */
  userArgs: readonly string[];
  /** `--ulimit` values. */
  ulimits: readonly string[];
  /** Extra flags for `run`. */
  runArgs: readonly string[];
}

/** A container's name, label values and command line. */
export interface RunPlan {
  name: string;
  /** Arguments after the CLI's global flags. */
  args: string[];
  /** Variables to add to the CLI's environment: the values of every `--env NAME`. */
  env: Record<string, string>;
}

/** The name of an attempt's container: `kubeface-<job>-<task>-<attempt>`. */
export function containerName(job: string, spec: AttemptSpec): string {
  return `kubeface-${job}-${spec.task}-${spec.attempt}`;
}

/**
 * The label that names a container's job; containers also carry
 * `kubeface.task` and `kubeface.attempt`.
 */
export const JOB_LABEL = "kubeface.job";

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Granted permissions with every path made absolute, so they mean the same in the container. */
export function absolutePaths(granted: PermissionSet): PermissionSet {
  const set = { ...granted };
  for (const name of ["read", "write"] as const) {
    const value = set[name];
    if (Array.isArray(value)) set[name] = value.map((path) => resolve(path));
  }
  return set;
}

/**
 * Bind mounts, by path: the storage root (writable), granted paths that
 * exist (writable when granted for writing), and a credentials file.
 *
 * @throws {BackendError} A granted path is `/`, which cannot be mounted over the image.
 */
export function mounts(
  storageUrl: string,
  granted: PermissionSet,
  credentials: string | undefined,
): Map<string, "rw" | "ro"> {
  const out = new Map<string, "rw" | "ro">();
  const add = (path: string, mode: "rw" | "ro") => {
    const clean = path.length > 1 ? path.replace(/\/+$/, "") : path;
    if (clean === "/") {
      throw new BackendError(
        "Cannot mount '/' into a container: grant narrower paths with --allow-read=PATH or --allow-write=PATH",
      );
    }
    if (out.get(clean) !== "rw") out.set(clean, mode);
  };
  if (!storageUrl.startsWith("gs://")) {
    const root = storageUrl.startsWith("file:") ? fileURLToPath(storageUrl) : resolve(storageUrl);
    add(root, "rw");
  }
  const writable = Array.isArray(granted.write) ? granted.write : [];
  const readable = Array.isArray(granted.read) ? granted.read : [];
  for (const path of writable) if (exists(path)) add(path, "rw");
  for (const path of readable) if (exists(path)) add(path, "ro");
  if (credentials) add(credentials, "ro");
  return out;
}

/** The credentials file a GCS worker needs, if any: the variable, else gcloud's default login. */
function gcsCredentials(): string | undefined {
  const given = readEnv("GOOGLE_APPLICATION_CREDENTIALS");
  if (given) return isAbsolute(given) ? given : resolve(given);
  const home = readEnv("HOME");
  const adc = home && join(home, ".config/gcloud/application_default_credentials.json");
  return adc && exists(adc) ? adc : undefined;
}

/**
 * The `run` command line of one attempt.
 *
 * @throws {TypeError} A permission flag is malformed.
 * @throws {BackendError} A granted path cannot be mounted.
 */
export function runPlan(job: JobContext, spec: AttemptSpec, settings: RunSettings): RunPlan {
  const name = containerName(job.key, spec);
  const storageUrl = job.storage.url;
  const granted = absolutePaths(job.permissions);
  const gcs = storageUrl.startsWith("gs://");
  const credentials = gcs && !readEnv("STORAGE_EMULATOR_HOST") ? gcsCredentials() : undefined;
  const values: Record<string, string> = {
    ...job.env,
    ...storageWorkerEnv(storageUrl),
    ...(credentials ? { GOOGLE_APPLICATION_CREDENTIALS: credentials } : {}),
  };

  const args = [
    "run",
    "--rm",
    "--pull=never",
    "--name",
    name,
    ...["--label", `${JOB_LABEL}=${job.key}`, "--label", `kubeface.task=${spec.task}`],
    ...["--label", `kubeface.attempt=${spec.attempt}`],
    `--network=${settings.network}`,
    "--read-only",
    "--tmpfs",
    `${CONTAINER_SCRATCH}:rw,mode=1777`,
    // `podman stop` gives the task its grace period, and the worker time to exit.
    `--stop-timeout=${Math.ceil(killGrace(job, undefined) / 1000)}`,
    ...settings.userArgs,
    ...settings.ulimits.flatMap((limit) => ["--ulimit", limit]),
  ];
  for (const [path, mode] of mounts(storageUrl, granted, credentials)) {
    args.push("--volume", `${path}:${path}:${mode}`);
  }
  // Values travel in the CLI's environment (`--env NAME`), not on its command
  // line, except for the variables the CLI itself depends on.
  const cliEnv: Record<string, string> = {};
  for (const [variable, value] of Object.entries(values).sort()) {
    if (CLI_OWN_ENV.has(variable)) {
      args.push("--env", `${variable}=${value}`);
    } else {
      args.push("--env", variable);
      cliEnv[variable] = value;
    }
  }
  args.push(...settings.runArgs, settings.image);

  // The image's entry point is deno; it holds every dependency, so no code is fetched.
  args.push(
    ...denoRunArgs({
      storageUrl,
      job: job.key,
      scratch: CONTAINER_SCRATCH,
      permissions: granted,
      mode: spec,
      graceMs: job.graceMs,
    }, IMAGE_WORKER_FILES),
  );
  return { name, args, env: cliEnv };
}
