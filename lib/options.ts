/**
 * Job options and their defaults: one table that both the API and the
 * command line's `--help` read.
 *
 * @module
 */

import { join } from "node:path";
import { checkJobKey } from "./format/layout.ts";
import type { Progress } from "./master/state.ts";
import { parsePermissions } from "./permissions.ts";

/** Options of one job. Every field is optional; see {@linkcode DEFAULTS}. */
export interface JobOptions {
  /**
   * Job key. Running again with the same key reuses every stored result.
   *
   * @default {a readable generated key, e.g. "squares-20261128-143501-k3f9"}
   */
  job?: string;
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
   * Time limit of one attempt, in milliseconds; 0 means none.
   *
   * @default {0}
   */
  timeoutMs?: number;
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
   * Most milliseconds between rewrites of the status pages.
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
  /** Called whenever the counts of tasks change. */
  onProgress?: (progress: Progress) => void;
  /** Stops the job (as Ctrl-C does) when aborted. */
  signal?: AbortSignal;
}

/** Options that have a fixed default. */
type Defaulted = Omit<JobOptions, "job" | "onProgress" | "signal">;

/** Job options with every default filled in. */
export type ResolvedJobOptions =
  & Required<Defaulted>
  & Pick<JobOptions, "job" | "onProgress" | "signal">;

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
export const DEFAULTS: Readonly<Required<Omit<JobOptions, "job" | "onProgress" | "signal">>> = {
  parallelism: 4,
  itemsPerTask: 1,
  permissions: [],
  env: {},
  failFast: true,
  maxRetries: 2,
  retryTaskErrors: false,
  retryDelayMs: 1000,
  timeoutMs: 0,
  speculationPercent: 20,
  speculationRuntimePercentile: 99,
  speculationMaxReruns: 1,
  statusIntervalMs: 5000,
  overwrite: false,
  uploadConcurrency: 8,
};

function positiveInteger(name: string, value: number, allowZero = false): number {
  if (!Number.isInteger(value) || value < (allowZero ? 0 : 1)) {
    throw new RangeError(
      `Cannot use ${name} ${value}: it must be a${
        allowZero ? " non-negative" : " positive"
      } integer`,
    );
  }
  return value;
}

/**
 * Fill in defaults and check every value, before anything happens.
 *
 * @throws {RangeError} A number is out of range.
 * @throws {TypeError} The job key or a permission flag is malformed.
 */
export function resolveJobOptions(options: JobOptions): ResolvedJobOptions {
  const resolved = { ...DEFAULTS, ...stripUndefined(options) } as ResolvedJobOptions;
  positiveInteger("parallelism", resolved.parallelism);
  positiveInteger("itemsPerTask", resolved.itemsPerTask);
  positiveInteger("maxRetries", resolved.maxRetries, true);
  positiveInteger("retryDelayMs", resolved.retryDelayMs, true);
  positiveInteger("timeoutMs", resolved.timeoutMs, true);
  positiveInteger("speculationMaxReruns", resolved.speculationMaxReruns, true);
  positiveInteger("statusIntervalMs", resolved.statusIntervalMs, true);
  positiveInteger("uploadConcurrency", resolved.uploadConcurrency);
  parsePermissions(resolved.permissions);
  if (resolved.job !== undefined) checkJobKey(resolved.job);
  for (const name of ["speculationPercent", "speculationRuntimePercentile"] as const) {
    const value = resolved[name];
    if (!(value >= 0 && value <= 100)) {
      throw new RangeError(`Cannot use ${name} ${value}: it must be between 0 and 100`);
    }
  }
  return resolved;
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/**
 * The storage used when none is given: `$KUBEFACE_STORAGE`, else
 * `$XDG_DATA_HOME/kubeface` (`~/.local/share/kubeface`).
 */
export function defaultStorage(): string {
  const env = (name: string) => {
    try {
      return Deno.env.get(name);
    } catch {
      return undefined;
    }
  };
  const fromEnv = env("KUBEFACE_STORAGE");
  if (fromEnv) return fromEnv;
  const data = env("XDG_DATA_HOME") ?? join(env("HOME") ?? ".", ".local", "share");
  return join(data, "kubeface");
}
