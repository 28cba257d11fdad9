/**
 * Messages between a worker process and the thread that runs the user's
 * task with only the permissions the user granted.
 *
 * @module
 */

import type { ErrorRecord } from "../format/manifest.ts";
import type { Encoding } from "../format/records.ts";

/** Worker → thread: run the task on a serialized input. */
export interface RunMessage {
  type: "run";
  /** `file:` URL of the verified bundle. */
  bundle: string;
  /** URL of the task module on the master, for messages. */
  module: string;
  task: number;
  /** Whether the input is an array of inputs, one result each. */
  batch: boolean;
  encoding: Encoding;
  payload: Uint8Array;
  /** Local copies of the files the input refers to, by slot. */
  files?: string[];
}

/** Worker → thread: import the bundle now, before the first task (warm workers). */
export interface LoadMessage {
  type: "load";
  bundle: string;
  module: string;
}

/**
 * Thread → worker: load a shared value of the job. The worker serves only
 * the job's own shared values, from its own storage: the request names no
 * location.
 */
export interface SharedRequest {
  type: "shared";
  id: number;
  sha256: string;
}

/** Worker → thread: a shared value, or why it could not be loaded. */
export type SharedReply =
  | { type: "shared"; id: number; encoding: Encoding; payload: Uint8Array }
  | { type: "shared"; id: number; error: ErrorRecord };

/** Thread → worker: the task ended. */
export interface DoneMessage {
  type: "done";
  startedAt: number;
  endedAt: number;
  /** The serialized result, when the task returned. */
  result?: { encoding: Encoding; bytes: Uint8Array };
  /** Paths of the files the result refers to, by slot, for the worker to store. */
  files?: string[];
  /** The error, when the task threw (or its result could not be serialized). */
  error?: ErrorRecord;
  /** The thread ended itself (the task called `Deno.exit` or `close`); start a new one. */
  closed?: boolean;
  /** The attempt crashed: no result is stored, and the worker says this. */
  crash?: string;
}

/** Every message a thread sends. */
export type ThreadMessage = SharedRequest | DoneMessage;

/**
 * A serving worker (`worker.ts --serve`, the warm pool) reads one
 * {@linkcode AttemptRequest} per line on standard input, and writes one line
 * starting with this prefix on standard output when the attempt ended.
 * Everything else on its output is the tasks' own output.
 */
export const CONTROL_PREFIX = "\u0000kubeface:";

/**
 * The lines of a byte stream as they arrive, each with its `\n` (the last
 * may have none): how the pool reads a worker's output and a serving worker
 * its requests.
 */
export async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let pending = "";
  for await (const chunk of stream) {
    pending += decoder.decode(chunk, { stream: true });
    let start = 0;
    for (let end = pending.indexOf("\n"); end >= 0; end = pending.indexOf("\n", start)) {
      yield pending.slice(start, end + 1);
      start = end + 1;
    }
    pending = pending.slice(start);
  }
  pending += decoder.decode();
  if (pending) yield pending;
}

/** Pool → serving worker: run this attempt (after those sent before it). */
export interface AttemptRequest {
  task: number;
  attempt: string;
  /** The pool submits the task for the first time: no other attempt can have stored a result. */
  first?: boolean;
}

/** Pool → serving worker: drop this attempt if it has not started yet. */
export interface CancelRequest {
  cancel: string;
}

/**
 * Serving worker → pool, after {@linkcode CONTROL_PREFIX}: the worker is
 * ready (it loaded the job), an attempt started, an attempt ended with this
 * exit code, or an attempt was dropped before it started.
 */
export type ControlMessage =
  | { ready: true }
  | { attempt: string; started: true }
  | { attempt: string; code: number }
  /** A cancel request found the attempt not started: it will not run here. */
  | { attempt: string; dropped: true };
