/**
 * Where a job's objects live under the storage root. Every job has one
 * prefix, `jobs/<key>/`, plus a small summary `index/<key>.json` so listing
 * jobs never walks their results.
 *
 * ```
 * index/<key>.json                  summary for `kubeface jobs`
 * jobs/<key>/lease/<epoch>.json     which master runs the job (see lib/master/lease.ts)
 * jobs/<key>/manifest.json          written last when a job is prepared
 * jobs/<key>/bundle.js              the bundled task module
 * jobs/<key>/inputs/<task>          one record per task
 * jobs/<key>/files/<sha256>         files given as inputs or returned as results
 * jobs/<key>/results/<task>/<attempt>.ok|.error
 * jobs/<key>/logs/<task>/<attempt>.log
 * jobs/<key>/checkpoints/<input>    the last checkpoint of an unfinished input
 * jobs/<key>/runs/<name>.json       index → task and attempt, for batch backends
 * jobs/<key>/status.json, status.html
 * ```
 *
 * @module
 */

/** Result object suffixes: a value, or an error the task threw. */
export type ResultKind = "ok" | "error";

/**
 * Keys of one job's objects, relative to the storage root.
 *
 * @example Where a job's objects are
 * ```ts
 * import assert from "node:assert/strict";
 * import { JobLayout } from "@kubeface/kubeface";
 *
 * const layout = new JobLayout("squares-1");
 * assert.equal(layout.manifest, "jobs/squares-1/manifest.json");
 * assert.equal(layout.result(7, "a1", "ok"), "jobs/squares-1/results/7/a1.ok");
 * assert.deepEqual(layout.parseResult("jobs/squares-1/results/7/a1.ok"), {
 *   task: 7,
 *   attempt: "a1",
 *   kind: "ok",
 * });
 * ```
 */
export class JobLayout {
  /** The job key. */
  readonly key: string;
  /** `jobs/<key>/`. */
  readonly prefix: string;

  /** Layout of job `key`; the key must already be valid. */
  constructor(key: string) {
    this.key = checkJobKey(key);
    this.prefix = `jobs/${key}/`;
  }

  /** The job manifest. */
  get manifest(): string {
    return `${this.prefix}manifest.json`;
  }
  /** The bundled task module. */
  get bundle(): string {
    return `${this.prefix}bundle.js`;
  }
  /** Prefix of all inputs. */
  get inputsPrefix(): string {
    return `${this.prefix}inputs/`;
  }
  /** Prefix of all results. */
  get resultsPrefix(): string {
    return `${this.prefix}results/`;
  }
  /** Status page, JSON. */
  get statusJson(): string {
    return `${this.prefix}status.json`;
  }
  /** Status page, HTML. */
  get statusHtml(): string {
    return `${this.prefix}status.html`;
  }
  /** Summary used to list jobs. */
  get summary(): string {
    return `index/${this.key}.json`;
  }
  /** Input record of a task. */
  input(task: number): string {
    return `${this.inputsPrefix}${task}`;
  }
  /** Prefix of a task's results. */
  taskResults(task: number): string {
    return `${this.resultsPrefix}${task}/`;
  }
  /** Result object of one attempt. */
  result(task: number, attempt: string, kind: ResultKind): string {
    return `${this.taskResults(task)}${attempt}.${kind}`;
  }
  /** Index map of a backend run: which task and attempt each index of a batch runs. */
  run(name: string): string {
    return `${this.prefix}runs/${name}.json`;
  }
  /** A file of the job, by the sha256 of its content. */
  file(sha256: string): string {
    return `${this.prefix}files/${sha256}`;
  }
  /** Prefix of the job's leases. */
  get leasePrefix(): string {
    return `${this.prefix}lease/`;
  }
  /** The lease of one epoch; epochs sort as text. */
  lease(epoch: number): string {
    return `${this.leasePrefix}${String(epoch).padStart(10, "0")}.json`;
  }
  /** The epoch of a lease key of this job. */
  parseLease(key: string): number | undefined {
    const match = /^(\d{10})\.json$/.exec(key.slice(this.leasePrefix.length));
    return key.startsWith(this.leasePrefix) && match ? Number(match[1]) : undefined;
  }
  /** Log object of one attempt. */
  log(task: number, attempt: string): string {
    return `${this.prefix}logs/${task}/${attempt}.log`;
  }
  /** Prefix of all checkpoints. */
  get checkpointsPrefix(): string {
    return `${this.prefix}checkpoints/`;
  }
  /** The last checkpoint of one input (of the task that runs it). */
  checkpoint(input: number): string {
    return `${this.checkpointsPrefix}${input}`;
  }
  /** The input a checkpoint key of this job belongs to. */
  parseCheckpoint(key: string): number | undefined {
    const match = /^(\d+)$/.exec(key.slice(this.checkpointsPrefix.length));
    return key.startsWith(this.checkpointsPrefix) && match ? Number(match[1]) : undefined;
  }

  /** Parse a result key of this job into its task, attempt and kind. */
  parseResult(key: string): { task: number; attempt: string; kind: ResultKind } | undefined {
    const match = /^(\d+)\/([A-Za-z0-9._-]+)\.(ok|error)$/.exec(
      key.slice(this.resultsPrefix.length),
    );
    if (!key.startsWith(this.resultsPrefix) || !match) return undefined;
    return { task: Number(match[1]), attempt: match[2]!, kind: match[3] as ResultKind };
  }
}

/** Prefix of all job summaries. */
export const INDEX_PREFIX = "index/";

/**
 * Check a job key: 1 to 100 characters of letters, digits, `.`, `_` and `-`,
 * starting with a letter or digit.
 *
 * @throws {TypeError} The key does not match.
 */
export function checkJobKey(key: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/.test(key)) {
    throw new TypeError(
      `Cannot use job key '${key}': use 1 to 100 letters, digits, '.', '_' or '-', starting with a letter or digit`,
    );
  }
  return key;
}

/**
 * A readable, unique job key: the module's name, the time and a random
 * suffix, e.g. `squares-20261128-143501-k3f9`.
 */
export function generateJobKey(moduleName: string, now: Date = new Date()): string {
  const base = moduleName.replace(/\.[^.]*$/, "").toLowerCase().replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "").slice(0, 40) || "job";
  const stamp = now.toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
  const random = Math.random().toString(36).slice(2, 6).padEnd(4, "0");
  return `${base}-${stamp}-${random}`;
}

/** Attempt ids: sortable by creation time, unique across master runs. */
export function newAttemptId(): string {
  return `${Date.now().toString(36)}-${crypto.randomUUID().slice(0, 6)}`;
}
