/**
 * The job manifest: what a job is made of. It is written last when a job is
 * prepared, so its presence means the bundle and every input are stored.
 *
 * @module
 */

/** Contents of `jobs/<key>/manifest.json`. */
export interface Manifest {
  /** Format version. */
  format: 1;
  /** Job key. */
  key: string;
  /** When the job was first prepared (ISO 8601). */
  createdAt: string;
  /** URL of the task module on the master that prepared it. */
  module: string;
  /** The bundled task module. */
  bundle: { sha256: string; size: number };
  /** Inputs: how many, and a sha256 over their serialized bytes in order. */
  inputs: { count: number; digest: string };
  /** Number of tasks. */
  tasks: number;
  /** Inputs per task; a task with more than one gets an array. */
  itemsPerTask: number;
}

/** Header of an input record. */
export interface InputHeader {
  kind: "input";
  /** Index of the task. */
  task: number;
  /** Index of the task's first input. */
  first: number;
  /** Number of inputs in the task (the value is an array when `batch`). */
  count: number;
  /** True when the value is an array of `count` inputs. */
  batch: boolean;
  encoding: "v8" | "bytes" | "none";
  size: number;
}

/** An error as a worker records it. */
export interface ErrorRecord {
  name: string;
  message: string;
  stack: string;
  /** Offset of the failing input within a batch task. */
  item?: number;
}

/** Header of a result record (`results/<task>/<attempt>.ok|.error`). */
export interface ResultHeader {
  kind: "result";
  status: "ok" | "error";
  job: string;
  task: number;
  attempt: string;
  /** Host (or pod) the attempt ran on. */
  host: string;
  /** ISO 8601 times around the user's code. */
  startedAt: string;
  endedAt: string;
  /** Time spent in the user's code, in milliseconds. */
  durationMs: number;
  /** Resident memory of the worker at the end, in bytes. */
  rssBytes: number;
  /** Deno version of the worker. */
  deno: string;
  error?: ErrorRecord;
  encoding: "v8" | "bytes" | "none";
  size: number;
}
