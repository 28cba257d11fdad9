/**
 * kubeface runs a parallel map of long, expensive tasks: one process (or
 * Kubernetes pod) per task, with storage (a local directory or Google Cloud
 * Storage) as the only channel between the master and the tasks.
 *
 * A task module exports `task` and `inputs`:
 *
 * ```ts ignore
 * // squares.ts
 * export const inputs = [1, 2, 3];
 * export function task(x: number): number {
 *   return x * x;
 * }
 * ```
 *
 * and a job file next to it maps it, yielding results in input order (or, with
 * `ordered: false`, as tasks finish):
 *
 * ```ts ignore
 * // job.ts: deno run -A job.ts [--backend kubernetes --storage gs://BUCKET/runs …]
 * import { Client } from "@kubeface/kubeface";
 *
 * const client = Client.fromArgs(Deno.args);
 * const squares = client.map<number, number>(new URL("./squares.ts", import.meta.url));
 * for await (const square of squares) console.log(square);
 * ```
 *
 * A relative path given to `map()` is resolved against the working
 * directory; `new URL("./squares.ts", import.meta.url)` names the module
 * next to the job file from anywhere.
 * A long task may take a second argument, its {@linkcode TaskContext}: a
 * signal that fires when its attempt is being stopped (a preemption, a time
 * limit, Ctrl-C), and checkpoints its next attempt resumes from.
 *
 * @module
 */

import { Client, type ClientOptions, type MapOptions, type MapRun } from "./lib/client.ts";
import type { Entry } from "./lib/master/run.ts";

export { Client, MapRun } from "./lib/client.ts";
export type { ClientOptions, MapOptions } from "./lib/client.ts";
export { kubefaceHelp, parseKubefaceArgs } from "./lib/cli/args.ts";
export type { FromArgsOptions, KubefaceArgs, ParseKubefaceArgsOptions } from "./lib/cli/args.ts";
export { UsageError } from "./lib/cli/io.ts";
export type { LogChannel, Logger } from "./lib/log.ts";
export { DEFAULTS, type JobOptions } from "./lib/options.ts";
export type { Entry, JobInfo, JobStartInfo } from "./lib/master/run.ts";
export type { JobPhase, Progress } from "./lib/master/state.ts";
export type { InputSource, TaskModule } from "./lib/task_module.ts";
export type { TaskContext } from "./lib/task_context.ts";
export { BACKEND_NAMES } from "./lib/backends/backend.ts";
export type {
  AttemptSpec,
  Backend,
  BackendEvent,
  BackendName,
  BackendSession,
  ExitReason,
  JobContext,
  WorkerLog,
} from "./lib/backends/backend.ts";
export { JobLayout, type ResultKind } from "./lib/format/layout.ts";
export { PERMISSION_NAMES, type PermissionName, type PermissionSet } from "./lib/permissions.ts";
export type { BackendOptions } from "./lib/backends/select.ts";
export type { LocalBackendOptions } from "./lib/backends/local.ts";
export type { ContainerBackendOptions } from "./lib/backends/container.ts";
export type { KubernetesBackendOptions, Toleration } from "./lib/backends/kubernetes/options.ts";
export { Shared } from "./lib/shared.ts";
export { file, FileRef, type InputFile } from "./lib/files.ts";
export { StoredFile } from "./lib/file_store.ts";
export type { FileEntry } from "./lib/files.ts";
export { openStorage } from "./lib/storage/storage.ts";
export type { Body, ObjectInfo, PutOptions, Storage } from "./lib/storage/storage.ts";
export type { FailureKind, JobHolder } from "./lib/errors.ts";
export {
  BackendError,
  CorruptObjectError,
  JobBusyError,
  JobInterruptedError,
  JobMismatchError,
  NotFoundError,
  StorageError,
  TaskError,
  TaskModuleError,
  type TaskModuleStage,
  WorkerCrashError,
} from "./lib/errors.ts";

/**
 * Map a task module over its inputs (or `options.inputs`) and iterate
 * `{ index, input, value }` entries as tasks finish, not in input order.
 * Shorthand for `new Client(options).map(module, options)`.
 *
 * @param module Path or URL of the task module; it must export `task`, and
 * `inputs` unless `options.inputs` is given.
 * @param options Where to run (storage, backend) and how (see {@linkcode JobOptions}), with `ordered: false`.
 * @returns The running job; iterate it for the entries.
 * @throws {TypeError} An option is malformed (the module itself is checked when iteration starts).
 * @throws {RangeError} A number option is out of range.
 *
 * @example Results as tasks finish
 * ```ts
 * import assert from "node:assert/strict";
 * import { map } from "@kubeface/kubeface";
 *
 * const dir = await Deno.makeTempDir();
 * const module = `${dir}/squares.ts`;
 * await Deno.writeTextFile(module, "export const task = (x: number) => x * x;\n");
 * const squares = new Map<number, number>();
 * for await (const { index, input, value } of map<number, number>(module, {
 *   storage: `${dir}/runs`,
 *   inputs: [1, 2, 3],
 *   ordered: false,
 * })) {
 *   assert.equal(value, input * input);
 *   squares.set(index, value);
 * }
 * assert.deepEqual([...squares].sort(([a], [b]) => a - b), [[0, 1], [1, 4], [2, 9]]);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function map<I = unknown, O = unknown>(
  module: string | URL,
  options: ClientOptions & MapOptions<I> & { ordered: false },
): MapRun<I, O, Entry<I, O>>;
/**
 * Map a task module over its inputs (or `options.inputs`) and iterate the
 * results in input order. Shorthand for `new Client(options).map(module, options)`.
 *
 * @param module Path or URL of the task module; it must export `task`, and
 * `inputs` unless `options.inputs` is given. A relative path is resolved
 * against the working directory: name a module next to the calling file
 * with `new URL("./m.ts", import.meta.url)`.
 * @param options Where to run (storage, backend) and how (see {@linkcode JobOptions}).
 * @returns The running job; iterate it for the results.
 * @throws {TypeError} An option is malformed (the module itself is checked when iteration starts).
 * @throws {RangeError} A number option is out of range.
 *
 * @example Map squares over inputs given here
 * ```ts
 * import assert from "node:assert/strict";
 * import { map } from "@kubeface/kubeface";
 *
 * const dir = await Deno.makeTempDir();
 * const module = `${dir}/squares.ts`;
 * await Deno.writeTextFile(module, "export const task = (x: number) => x * x;\n");
 * const results = [];
 * for await (const y of map<number, number>(module, {
 *   storage: `${dir}/runs`,
 *   inputs: [1, 2, 3],
 * })) {
 *   results.push(y);
 * }
 * assert.deepEqual(results, [1, 4, 9]);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function map<I = unknown, O = unknown>(
  module: string | URL,
  options?: ClientOptions & MapOptions<I> & { ordered?: true },
): MapRun<I, O>;
/**
 * Map a task module over its inputs (or `options.inputs`): in input order,
 * or as `{ index, input, value }` entries as tasks finish when
 * `options.ordered` is false.
 *
 * @param module Path or URL of the task module.
 * @param options Where to run (storage, backend) and how.
 * @returns The running job; iterate it for the results.
 * @throws {TypeError} An option is malformed.
 * @throws {RangeError} A number option is out of range.
 */
export function map<I = unknown, O = unknown>(
  module: string | URL,
  options?: ClientOptions & MapOptions<I>,
): MapRun<I, O, O | Entry<I, O>>;
export function map<I = unknown, O = unknown>(
  module: string | URL,
  options: ClientOptions & MapOptions<I> = {},
): MapRun<I, O, O | Entry<I, O>> {
  const { inputs, onStart, onPrepare, onWarning, ordered, ...clientOptions } = options;
  return new Client(clientOptions).map<I, O>(module, {
    inputs,
    onStart,
    onPrepare,
    onWarning,
    ordered,
  });
}
