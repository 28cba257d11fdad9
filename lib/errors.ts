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
 * const storage = await Deno.makeTempDir();
 * try {
 *   await Array.fromAsync(map("./examples/checked.ts", { storage }));
 *   assert.fail("the job should have failed");
 * } catch (error) {
 *   assert.ok(error instanceof TaskError);
 *   assert.equal(error.input, 2);
 *   assert.equal(error.remoteName, "RangeError");
 *   assert.match(error.remoteStack, /checked\.ts/);
 * }
 * await Deno.remove(storage, { recursive: true });
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
 * const storage = await Deno.makeTempDir();
 * const run = map("./tests/fixtures/forever.ts", { storage, timeoutMs: 300, maxRetries: 0 });
 * const error = await Array.fromAsync(run).catch((e) => e);
 * assert.ok(error instanceof WorkerCrashError);
 * assert.equal(error.kind, "timeout");
 * await Deno.remove(storage, { recursive: true });
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
 * const root = await Deno.makeTempDir();
 * await Array.fromAsync(map("./examples/squares.ts", { storage: root, job: "k", inputs: [3] }));
 * await using storage = await openStorage(root);
 * const [input] = await Array.fromAsync(storage.list("jobs/k/inputs/"));
 * const bytes = await new Response(await storage.get(input!.key)).bytes();
 * await storage.put(input!.key, bytes.subarray(0, bytes.length - 1));
 * const run = map("./examples/squares.ts", { storage: root, job: "k", inputs: [3] });
 * const error = await Array.fromAsync(run.entries()).catch((e) => e);
 * assert.ok(error instanceof CorruptObjectError);
 * assert.match(error.message, /input of task 0/);
 * await Deno.remove(root, { recursive: true });
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

/**
 * The task module's `inputs` threw while kubeface read them: the user's
 * error, with the index reached. Its `cause` is what was thrown.
 *
 * @example An inputs generator that fails part way
 * ```ts
 * import assert from "node:assert/strict";
 * import { InputsError, map } from "@kubeface/kubeface";
 *
 * const storage = await Deno.makeTempDir();
 * function* inputs() {
 *   yield 1;
 *   throw new Error("no more data");
 * }
 * const error = await Array.fromAsync(map("./examples/squares.ts", { storage, inputs })).catch(
 *   (e) => e,
 * );
 * assert.ok(error instanceof InputsError);
 * assert.equal(error.index, 1);
 * await Deno.remove(storage, { recursive: true });
 * ```
 */
export class InputsError extends Error {
  /** The index of the input being read when it threw. */
  readonly index: number;

  /** Build the error; `cause` is what the inputs threw. */
  constructor(index: number, cause: unknown) {
    super(
      `Cannot read input ${index}: the inputs threw ${
        cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause)
      }`,
      { cause },
    );
    this.name = "InputsError";
    this.index = index;
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
 * const storage = await Deno.makeTempDir();
 * const client = new Client({ storage });
 * await Array.fromAsync(client.map("./examples/squares.ts", { job: "k", inputs: [1] }));
 * await assert.rejects(
 *   Array.fromAsync(client.map("./examples/squares.ts", { job: "k", inputs: [2] })),
 *   JobMismatchError,
 * );
 * await Deno.remove(storage, { recursive: true });
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
 * const storage = await Deno.makeTempDir();
 * const options = { storage, job: "once", inputs: [1, 2] };
 * const first = map("./examples/squares.ts", options)[Symbol.asyncIterator]();
 * await first.next(); // the first master holds the job now
 * const error = await Array.fromAsync(map("./examples/squares.ts", options)).catch((e) => e);
 * assert.ok(error instanceof JobBusyError);
 * assert.equal(error.holder.pid, Deno.pid);
 * await first.return(undefined);
 * await Deno.remove(storage, { recursive: true });
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
 * const storage = await Deno.makeTempDir();
 * const run = map<number, number>("./examples/squares.ts", { storage });
 * await assert.rejects(async () => {
 *   for await (const y of run) if (y > 10) await run.cancel();
 * }, JobInterruptedError);
 * await Deno.remove(storage, { recursive: true });
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

/** Where kubeface's own code is, to tell its stack frames from the user's. */
const OWN_CODE = new URL("../", import.meta.url).href;

/**
 * The frames of a stack that are the user's: without kubeface's own
 * (under its `lib/`, `cli.ts`, `mod.ts`) and the runtime's (`ext:`,
 * `node:`). The first line (the message) is kept.
 */
export function userStack(error: unknown): string {
  if (!(error instanceof Error) || !error.stack) return errorMessage(error);
  const [head = "", ...frames] = error.stack.split("\n");
  const own = (line: string) =>
    /\(?(ext:|node:)/.test(line) ||
    [`${OWN_CODE}lib/`, `${OWN_CODE}cli.ts`, `${OWN_CODE}mod.ts`].some((p) => line.includes(p));
  return [head, ...frames.filter((line) => !own(line))].join("\n");
}

/** Return a readable message of any thrown value. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
