/**
 * The job manifest: what a job is made of. It is written last when a job is
 * prepared, so its presence means the bundle and every input are stored.
 *
 * @module
 */

import type { FileEntry } from "../files.ts";

/**
 * The manifest format kubeface writes: 2 since records carry checksums and
 * manifests name their shared values. Format 1 jobs are still read.
 */
export const MANIFEST_FORMAT = 2;

/** Contents of `jobs/<key>/manifest.json`. */
export interface Manifest {
  /** Format version: 1 or {@linkcode MANIFEST_FORMAT}. */
  format: 1 | 2;
  /** Job key. */
  key: string;
  /**
   * Random id of this preparation of the job; every result names it, so a
   * result of an earlier, overwritten job under the same key is never taken.
   * (Format 2.)
   */
  id?: string;
  /** The sha256 of every shared value the inputs refer to; tasks get only these. (Format 2.) */
  shared?: string[];
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
  /** Where the files the inputs refer to (by slot) are stored. */
  files?: FileEntry[];
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
  /** The manifest id of the job the attempt ran for (format 2). */
  manifest?: string;
  error?: ErrorRecord;
  encoding: "v8" | "bytes" | "none";
  size: number;
  /** Where the files the value refers to (by slot) are stored. */
  files?: FileEntry[];
}
