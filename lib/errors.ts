/**
 * Error classes by meaning. Bad arguments throw the built-in `TypeError` or
 * `RangeError`; everything a user may want to tell apart has a class here.
 *
 * @module
 */

/** Where a failure came from, to tell user bugs apart from infrastructure. */
export type FailureKind = "task" | "crash" | "timeout" | "infrastructure";

/** Fields that describe one failed task. */
export interface TaskFailureInfo {
  /** Index of the task in the job (equals the input index unless `itemsPerTask` > 1). */
  task: number;
  /** Index of the first input of the task. */
  input: number;
  /** Attempt id of the attempt that failed. */
  attempt?: string;
}

/**
 * A task's own code threw. Carries the remote error's name, message and
 * stack, and the index of the task and its first input.
 *
 * @example The remote error, by input
 * ```ts
 * import assert from "node:assert/strict";
 * import { map, TaskError } from "@kubeface/kubeface";
 *
 * const dir = await Deno.makeTempDir();
 * const module = `${dir}/checked.ts`;
 * await Deno.writeTextFile(
 *   module,
 *   `export const inputs = [4, 9, -1, 16];
 * export function task(x: number): number {
 *   if (x < 0) throw new RangeError("cannot take the square root of " + x);
 *   return Math.sqrt(x);
 * }
 * `,
 * );
 * try {
 *   await Array.fromAsync(map(module, { storage: `${dir}/runs` }));
 *   assert.fail("the job should have failed");
 * } catch (error) {
 *   assert.ok(error instanceof TaskError);
 *   assert.equal(error.input, 2);
 *   assert.equal(error.remoteName, "RangeError");
 *   assert.match(error.remoteStack, /checked\.ts:3/);
 * }
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class TaskError extends Error {
  /** Index of the task that threw. */
  readonly task: number;
  /** Index of the first input of that task. */
  readonly input: number;
  /** Name of the remote error, e.g. `"TypeError"`. */
  readonly remoteName: string;
  /** Message of the remote error. */
  readonly remoteMessage: string;
  /** Stack of the remote error as printed by the worker. */
  readonly remoteStack: string;
  /** Attempt that produced the error. */
  readonly attempt: string | undefined;
  /** Host the attempt ran on. */
  readonly host: string | undefined;

  /** Build a task error from the worker's error record. */
  constructor(
    info: TaskFailureInfo & { name: string; message: string; stack: string; host?: string },
    options?: ErrorOptions,
  ) {
    super(`Task ${info.task} (input ${info.input}) threw ${info.name}: ${info.message}`, options);
    this.name = "TaskError";
    this.task = info.task;
    this.input = info.input;
    this.remoteName = info.name;
    this.remoteMessage = info.message;
    this.remoteStack = info.stack;
    this.attempt = info.attempt;
    this.host = info.host;
  }
}

/**
 * A worker ended without writing a result: it was killed, ran out of memory,
 * timed out, or the infrastructure failed. Not a bug in the task's code.
 *
 * @example A task that runs past its time limit
 * ```ts
 * import assert from "node:assert/strict";
 * import { map, WorkerCrashError } from "@kubeface/kubeface";
 *
 * const dir = await Deno.makeTempDir();
 * const module = `${dir}/forever.ts`;
 * await Deno.writeTextFile(module, "export const task = () => new Promise(() => {});\n");
 * const options = { storage: `${dir}/runs`, inputs: [1], timeoutMs: 300, maxRetries: 0 };
 * const error = await Array.fromAsync(map(module, options)).catch((e) => e);
 * assert.ok(error instanceof WorkerCrashError);
 * assert.equal(error.kind, "timeout");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class WorkerCrashError extends Error {
  /** Index of the task. */
  readonly task: number;
  /** Index of the first input of the task. */
  readonly input: number;
  /** What went wrong. */
  readonly kind: Exclude<FailureKind, "task">;
  /** How many attempts were made. */
  readonly attempts: number;

  /** Build a crash error; `detail` says what happened to the last attempt. */
  constructor(
    info: TaskFailureInfo & {
      kind: Exclude<FailureKind, "task">;
      attempts: number;
      detail: string;
    },
    options?: ErrorOptions,
  ) {
    super(
      info.kind === "infrastructure"
        ? `Task ${info.task} (input ${info.input}) could not run: ${info.detail}`
        : `Task ${info.task} (input ${info.input}) ${
          info.kind === "timeout" ? "timed out" : "crashed"
        } ${info.attempts} time(s) without a result: ${info.detail}`,
      options,
    );
    this.name = "WorkerCrashError";
    this.task = info.task;
    this.input = info.input;
    this.kind = info.kind;
    this.attempts = info.attempts;
  }
}

/** A storage operation failed. `url` names the object or root involved. */
export class StorageError extends Error {
  /** The storage URL of the object or root. */
  readonly url: string;

  /** Build a storage error for `url`. */
  constructor(message: string, url: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "StorageError";
    this.url = url;
  }
}

/**
 * The object asked for does not exist.
 *
 * @example Reading a missing object
 * ```ts
 * import assert from "node:assert/strict";
 * import { NotFoundError, openStorage } from "@kubeface/kubeface";
 *
 * await using storage = await openStorage(await Deno.makeTempDir());
 * await assert.rejects(storage.get("nothing/here"), NotFoundError);
 * ```
 */
export class NotFoundError extends StorageError {
  /** Build a not-found error for `url`. */
  constructor(url: string, options?: ErrorOptions) {
    super(`Cannot read '${url}': the object does not exist`, url, options);
    this.name = "NotFoundError";
  }
}

/**
 * A stored object is damaged: truncated, changed by hand, or not what its
 * key says. kubeface recomputes what it can (a result) and names the object
 * otherwise, so a job can be overwritten (`--overwrite`).
 *
 * @example A record cut short
 * ```ts
 * import assert from "node:assert/strict";
 * import { CorruptObjectError, map, openStorage } from "@kubeface/kubeface";
 *
 * const dir = await Deno.makeTempDir();
 * const module = `${dir}/squares.ts`;
 * await Deno.writeTextFile(module, "export const task = (x: number) => x * x;\n");
 * const options = { storage: `${dir}/runs`, job: "k", inputs: [3] };
 * await Array.fromAsync(map(module, options));
 * await using storage = await openStorage(`${dir}/runs`);
 * const [input] = await Array.fromAsync(storage.list("jobs/k/inputs/"));
 * const bytes = await new Response(await storage.get(input!.key)).bytes();
 * await storage.put(input!.key, bytes.subarray(0, bytes.length - 1));
 * const error = await Array.fromAsync(map(module, options).entries()).catch((e) => e);
 * assert.ok(error instanceof CorruptObjectError);
 * assert.match(error.message, /input of task 0/);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class CorruptObjectError extends Error {
  /** What the object is and where, e.g. `result of task 3 (gs://b/jobs/k/results/3/a.ok)`. */
  readonly object: string;
  /** What is wrong with it. */
  readonly detail: string;

  /** Build the error for `object`; `detail` says what is wrong with it. */
  constructor(object: string, detail: string, options?: ErrorOptions) {
    super(`Cannot use the ${object}: ${detail}`, options);
    this.name = "CorruptObjectError";
    this.object = object;
    this.detail = detail;
  }
}

/** A backend (local processes, Kubernetes, containers) could not do its part. */
export class BackendError extends Error {
  /** Build a backend error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "BackendError";
  }
}

/**
 * The job stored under a key was made from a different module or different
 * inputs than the one being run now.
 *
 * @example Reusing a key with other inputs
 * ```ts
 * import assert from "node:assert/strict";
 * import { Client, JobMismatchError } from "@kubeface/kubeface";
 *
 * const dir = await Deno.makeTempDir();
 * const module = `${dir}/squares.ts`;
 * await Deno.writeTextFile(module, "export const task = (x: number) => x * x;\n");
 * const client = new Client({ storage: `${dir}/runs` });
 * await Array.fromAsync(client.map(module, { job: "k", inputs: [1] }));
 * await assert.rejects(
 *   Array.fromAsync(client.map(module, { job: "k", inputs: [2] })),
 *   JobMismatchError,
 * );
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class JobMismatchError extends Error {
  /** The job key. */
  readonly job: string;

  /** Build a mismatch error for job `job`. */
  constructor(job: string, message: string) {
    super(message);
    this.name = "JobMismatchError";
    this.job = job;
  }
}

/** Who holds a job: the parts of its lease an error names. */
export interface JobHolder {
  /** Host of the master. */
  host: string;
  /** Process id of the master. */
  pid: number;
  /** When it took the job (ISO 8601). */
  since: string;
  /** When it last said it runs (ISO 8601). */
  renewedAt: string;
}

/**
 * Another master is running the job: a job has one master at a time.
 *
 * @example Two maps with one key at once
 * ```ts
 * import assert from "node:assert/strict";
 * import { JobBusyError, map } from "@kubeface/kubeface";
 *
 * const dir = await Deno.makeTempDir();
 * const module = `${dir}/squares.ts`;
 * await Deno.writeTextFile(module, "export const task = (x: number) => x * x;\n");
 * const options = { storage: `${dir}/runs`, job: "once", inputs: [1, 2] };
 * const first = map(module, options)[Symbol.asyncIterator]();
 * await first.next(); // the first master holds the job now
 * const error = await Array.fromAsync(map(module, options)).catch((e) => e);
 * assert.ok(error instanceof JobBusyError);
 * assert.equal(error.holder.pid, Deno.pid);
 * await first.return(undefined);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class JobBusyError extends Error {
  /** The job key. */
  readonly job: string;
  /** The master that runs it. */
  readonly holder: JobHolder;

  /** Build the error for job `job` held by `holder`. */
  constructor(job: string, holder: JobHolder) {
    super(
      `Cannot run job '${job}': another master is running it (host ${holder.host}, pid ${holder.pid}, since ${holder.since}, last seen ${holder.renewedAt}); wait for it to finish, follow its results with --attach, or take the job over with --overwrite`,
    );
    this.name = "JobBusyError";
    this.job = job;
    this.holder = holder;
  }
}

/**
 * The job was stopped by the user (Ctrl-C or `cancel()`) before it finished.
 *
 * @example Stopping a job from the loop
 * ```ts
 * import assert from "node:assert/strict";
 * import { JobInterruptedError, map } from "@kubeface/kubeface";
 *
 * const dir = await Deno.makeTempDir();
 * const module = `${dir}/squares.ts`;
 * await Deno.writeTextFile(module, "export const task = (x: number) => x * x;\n");
 * const inputs = Array.from({ length: 100 }, (_, i) => i);
 * const run = map<number, number>(module, { storage: `${dir}/runs`, inputs });
 * await assert.rejects(async () => {
 *   for await (const y of run) if (y > 10) await run.cancel();
 * }, JobInterruptedError);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class JobInterruptedError extends Error {
  /** The job key. */
  readonly job: string;

  /** Build an interruption error for job `job`. */
  constructor(job: string) {
    super(`Job '${job}' was interrupted; run again with the same job key to resume it`);
    this.name = "JobInterruptedError";
    this.job = job;
  }
}

/** What a task module failed at, in the master. */
export type TaskModuleStage = "bundle" | "load" | "inputs";

/** kubeface's own sources, whose frames are left out of a user's stack. */
const KUBEFACE_ROOT = new URL("../", import.meta.url).href;

/**
 * A stack with only the user's own frames: without the frames of
 * kubeface's sources (`lib/`, `cli.ts`, `mod.ts`, `worker.ts`) and of the
 * runtime (`ext:`, `node:`, native code).
 *
 * @param stack An error's stack, as `Error.stack` has it.
 */
export function userStack(stack: string): string {
  const own = [
    `${KUBEFACE_ROOT}lib/`,
    ...["cli.ts", "mod.ts", "worker.ts"].map((f) => `${KUBEFACE_ROOT}${f}:`),
  ];
  return stack.split("\n").filter((line) => {
    if (!/^\s+at /.test(line)) return true; // the message, and lines of it
    if (own.some((prefix) => line.includes(prefix))) return false;
    return /(file|https?):\/\//.test(line); // drop ext:, node:, <anonymous> and native frames
  }).join("\n");
}

/**
 * The task module failed in the master: it could not be bundled, its top
 * level threw while it was loaded, or its `inputs` threw while they were
 * read. A mistake in the user's module, not in kubeface: `userStack` has
 * the user's frames only.
 *
 * @example An inputs function that throws
 * ```ts
 * import assert from "node:assert/strict";
 * import { map, TaskModuleError } from "@kubeface/kubeface";
 *
 * const dir = await Deno.makeTempDir();
 * const module = `${dir}/squares.ts`;
 * await Deno.writeTextFile(module, "export const task = (x: number) => x * x;\n");
 * const inputs = () => {
 *   throw new RangeError("no inputs today");
 * };
 * const error = await Array.fromAsync(map(module, { storage: `${dir}/runs`, inputs }))
 *   .catch((e) => e);
 * assert.ok(error instanceof TaskModuleError);
 * assert.equal(error.stage, "inputs");
 * assert.match(error.message, /threw RangeError: no inputs today/);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class TaskModuleError extends Error {
  /** URL of the task module. */
  readonly module: string;
  /** What failed: bundling the module, loading it, or reading its inputs. */
  readonly stage: TaskModuleStage;
  /**
   * What the user needs to see: Deno's text for a failed bundle, or the
   * error's stack with the user's own frames only.
   */
  readonly userStack: string;
  /** The index of the input being read when the inputs threw (stage `inputs`). */
  readonly index: number | undefined;

  /** Build a task module error; `cause` is what the module (or `deno bundle`) threw. */
  constructor(
    info: {
      module: string;
      stage: TaskModuleStage;
      message: string;
      userStack: string;
      index?: number;
    },
    options?: ErrorOptions,
  ) {
    super(info.message, options);
    this.name = "TaskModuleError";
    this.module = info.module;
    this.stage = info.stage;
    this.userStack = info.userStack;
    this.index = info.index;
  }
}

/** Return a readable message of any thrown value. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
