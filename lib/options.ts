/**
 * Job options and their defaults: one table that both the API and the
 * command line's `--help` read.
 *
 * @module
 */

import { basename } from "node:path";
import { checkJobKey, generateJobKey } from "./format/layout.ts";
import type { Progress } from "./master/state.ts";
import { parsePermissions, type PermissionSet } from "./permissions.ts";
import { DEFAULT_GRACE_MS } from "./worker/stopping.ts";

/** Options of one job. Every field is optional; see {@linkcode DEFAULTS}. */
export interface JobOptions {
  /**
   * Job key. Running again with the same key reuses every stored result.
   *
   * @default {a readable generated key, e.g. "squares-20261128-143501-k3f9"}
   */
  job?: string;
  /**
   * The `deno.json`, `deno.jsonc` or `package.json` the task module is
   * bundled with (its import map and lock file), as `deno run --config` takes it.
   *
   * @default {the nearest one above the task module, as `deno run` of the module finds it}
   */
  config?: string;
  /**
   * Most tasks running at once.
   *
   * @default {4}
   */
  parallelism?: number;
  /**
   * Inputs given to one task; a task with more than one runs them one after
   * another in the same worker.
   *
   * @default {1}
   */
  itemsPerTask?: number;
  /**
   * Deno permission flags for tasks, e.g. `["--allow-net", "--allow-read=/data"]`.
   * Tasks get nothing else, except that the worker (and so the task) can
   * reach the job's storage and a private scratch directory.
   *
   * @default {[]}
   */
  permissions?: readonly string[];
  /**
   * Environment variables set for every worker.
   *
   * @default {{}}
   */
  env?: Readonly<Record<string, string>>;
  /**
   * Throw as soon as a task fails. When off, every other task runs to the end
   * first, and the error is thrown when iteration reaches the failed task.
   *
   * @default {true}
   */
  failFast?: boolean;
  /**
   * How many times a task whose worker crashed, was lost or timed out is
   * started again.
   *
   * @default {2}
   */
  maxRetries?: number;
  /**
   * Also start a task again when its own code threw.
   *
   * @default {false}
   */
  retryTaskErrors?: boolean;
  /**
   * Base delay before a retry, in milliseconds; it doubles with each retry of
   * the same task (with jitter), up to a minute.
   *
   * @default {1000}
   */
  retryDelayMs?: number;
  /**
   * Time limit of one attempt, in milliseconds; 0 means none. At the limit
   * the task's `ctx.signal` fires and it gets `graceMs` to checkpoint.
   *
   * @default {0}
   */
  timeoutMs?: number;
  /**
   * Time a task gets, once its attempt is being stopped (SIGTERM from a
   * preemption or a container stop, Ctrl-C, a lost speculative copy, the
   * time limit), to checkpoint and return after `ctx.signal` fires, in
   * milliseconds; then it is killed. On Kubernetes the pods'
   * `terminationGracePeriodSeconds` is this plus 5 s for the worker to exit.
   * A task that takes no context cannot see the signal and is stopped at once.
   *
   * @default {25000}
   */
  graceMs?: number;
  /**
   * Start speculative copies of stragglers once at most this percentage of
   * the tasks are unfinished (the tail of the job); 0 turns speculation off.
   *
   * @default {20}
   */
  speculationPercent?: number;
  /**
   * A task is a straggler when it runs longer than this percentile of the
   * runtimes of the tasks done so far (and at least a second).
   *
   * @default {99}
   */
  speculationRuntimePercentile?: number;
  /**
   * Most speculative copies of one task.
   *
   * @default {1}
   */
  speculationMaxReruns?: number;
  /**
   * Most milliseconds between rewrites of the status pages while the job changes. A job whose
   * pages take long to write (tens of MiB at 100,000 tasks) rewrites them less often: at most
   * every ten times the last write's duration, and at least every minute.
   *
   * @default {5000}
   */
  statusIntervalMs?: number;
  /**
   * Replace a stored job with the same key that was made from another module
   * or other inputs, deleting its results.
   *
   * @default {false}
   */
  overwrite?: boolean;
  /**
   * Most inputs uploaded at once.
   *
   * @default {8}
   */
  uploadConcurrency?: number;
  /**
   * Most inputs a job may have; more is an error (an endless generator
   * would otherwise upload without end).
   *
   * @default {1000000}
   */
  maxInputs?: number;
  /**
   * Follow the job another master runs with this key: yield its results as
   * they are stored, read-only, running nothing.
   *
   * @default {false}
   */
  attach?: boolean;
  /** Called whenever the counts of tasks change. */
  onProgress?: (progress: Progress) => void;
  /** Stops the job (as Ctrl-C does) when aborted. */
  signal?: AbortSignal;
}

/** Options that have a fixed default. */
type Defaulted = Omit<JobOptions, "job" | "config" | "onProgress" | "signal">;

/** Job options with every default filled in, the key chosen and the permissions parsed. */
export type ResolvedJobOptions =
  & Required<Omit<Defaulted, "permissions">>
  & Pick<JobOptions, "config" | "onProgress" | "signal">
  & {
    /** The job key, given or generated. */
    job: string;
    /** What the task may do, parsed from the permission flags. */
    permissions: PermissionSet;
  };

/**
 * The defaults of {@linkcode JobOptions}; `kubeface map --help` shows the same.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULTS } from "@kubeface/kubeface";
 *
 * assert.equal(DEFAULTS.parallelism, 4);
 * assert.equal(DEFAULTS.failFast, true);
 * ```
 */
export const DEFAULTS: Readonly<
  Required<Omit<JobOptions, "job" | "config" | "onProgress" | "signal">>
> = {
  parallelism: 4,
  itemsPerTask: 1,
  permissions: [],
  env: {},
  failFast: true,
  maxRetries: 2,
  retryTaskErrors: false,
  retryDelayMs: 1000,
  timeoutMs: 0,
  graceMs: DEFAULT_GRACE_MS,
  speculationPercent: 20,
  speculationRuntimePercentile: 99,
  speculationMaxReruns: 1,
  statusIntervalMs: 5000,
  overwrite: false,
  uploadConcurrency: 8,
  maxInputs: 1_000_000,
  attach: false,
};

/** Most tasks running at once: what one Indexed Job allows. */
export const MAX_PARALLELISM = 100_000;
/** Status pages are rewritten at most this often. */
export const MIN_STATUS_INTERVAL_MS = 100;

function integerIn(name: string, value: number, min: number, max = Number.MAX_SAFE_INTEGER): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(
      `Cannot use ${name} ${value}: it must be a whole number from ${min}${
        max < Number.MAX_SAFE_INTEGER ? ` to ${max}` : " up"
      }`,
    );
  }
}

/**
 * Fill in defaults and check every value, before anything happens. Only
 * the fields of {@linkcode JobOptions} are kept.
 *
 * @param options The options given.
 * @param module The task module, which names a generated job key.
 * @throws {RangeError} A number is out of range.
 * @throws {TypeError} The job key or a permission flag is malformed.
 */
export function resolveJobOptions(options: JobOptions, module: URL): ResolvedJobOptions {
  const defaulted = Object.fromEntries(
    (Object.keys(DEFAULTS) as (keyof Defaulted)[]).map((
      name,
    ) => [name, options[name] ?? DEFAULTS[name]]),
  ) as Required<Defaulted>;
  const resolved: ResolvedJobOptions = {
    ...defaulted,
    permissions: parsePermissions(defaulted.permissions),
    job: checkJobKey(options.job ?? generateJobKey(basename(module.pathname))),
    ...(options.config !== undefined ? { config: options.config } : {}),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  };
  integerIn("parallelism", resolved.parallelism, 1, MAX_PARALLELISM);
  integerIn("itemsPerTask", resolved.itemsPerTask, 1);
  integerIn("maxRetries", resolved.maxRetries, 0);
  integerIn("retryDelayMs", resolved.retryDelayMs, 0);
  integerIn("timeoutMs", resolved.timeoutMs, 0);
  integerIn("graceMs", resolved.graceMs, 0);
  integerIn("speculationMaxReruns", resolved.speculationMaxReruns, 0);
  integerIn("statusIntervalMs", resolved.statusIntervalMs, MIN_STATUS_INTERVAL_MS);
  integerIn("uploadConcurrency", resolved.uploadConcurrency, 1);
  integerIn("maxInputs", resolved.maxInputs, 1);
  for (const name of ["speculationPercent", "speculationRuntimePercentile"] as const) {
    const value = resolved[name];
    if (!(value >= 0 && value <= 100)) {
      throw new RangeError(`Cannot use ${name} ${value}: it must be between 0 and 100`);
    }
  }
  return resolved;
}

/**
 * The key of map number `index` (from 0) of a client with a job prefix:
 * `<prefix>-<index in three digits>`, e.g. `nightly-007`.
 */
export function jobPrefixKey(prefix: string, index: number): string {
  return `${prefix}-${String(index).padStart(3, "0")}`;
}

/**
 * Check that a job prefix makes valid job keys.
 *
 * @throws {TypeError} The keys it makes are not valid job keys.
 */
export function checkJobPrefix(prefix: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$/.test(prefix)) {
    throw new TypeError(
      `Cannot use job prefix '${prefix}': use 1 to 96 letters, digits, '.', '_' or '-', starting with a letter or digit`,
    );
  }
  return prefix;
}
