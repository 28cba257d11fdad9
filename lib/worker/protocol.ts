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
  /** The attempt's id (`ctx.attempt`). */
  attempt?: string;
  /** The worker's private writable directory (`ctx.scratch`). */
  scratch?: string;
  /** Index of the task's first input (`ctx.index` of its first item). */
  first?: number;
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

/** Thread → worker: store a checkpoint of one input (`ctx.checkpoint`). */
export interface CheckpointRequest {
  type: "checkpoint";
  id: number;
  /** The input it belongs to. */
  index: number;
  encoding: Encoding;
  payload: Uint8Array;
}

/** Worker → thread: the checkpoint is stored, or why not. */
export interface CheckpointReply {
  type: "checkpointed";
  id: number;
  error?: ErrorRecord;
}

/** Thread → worker: the last checkpoint of one input, if any (`ctx.restore`). */
export interface RestoreRequest {
  type: "restore";
  id: number;
  index: number;
}

/** Worker → thread: the checkpoint, or none (missing or damaged). */
export type RestoreReply =
  | { type: "restored"; id: number; encoding: Encoding; payload: Uint8Array }
  | { type: "restored"; id: number; error?: ErrorRecord };

/** Worker → thread: the attempt is being stopped; fire `ctx.signal`. */
export interface StopMessage {
  type: "stop";
  /** Why, for the signal's reason. */
  reason: string;
}

/**
 * Thread → worker, in answer to a {@linkcode StopMessage}: whether the
 * running task can see the signal (it takes a context), so is worth waiting for.
 */
export interface StoppingMessage {
  type: "stopping";
  listens: boolean;
}

/** Thread → worker: a line for the attempt's log (a checkpoint that could not be used). */
export interface WarningMessage {
  type: "warning";
  message: string;
}

/** Every message a thread sends. */
export type ThreadMessage =
  | SharedRequest
  | DoneMessage
  | CheckpointRequest
  | RestoreRequest
  | StoppingMessage
  | WarningMessage;

/** Every message a worker sends its thread. */
export type WorkerMessage =
  | RunMessage
  | LoadMessage
  | SharedReply
  | CheckpointReply
  | RestoreReply
  | StopMessage;

/**
 * A serving worker (`worker.ts --serve`, the warm pool) reads one
 * {@linkcode AttemptRequest} per line on standard input, and writes one line
 * starting with this prefix on standard output when the attempt ended.
 * Everything else on its output is the tasks' own output.
 */
export const CONTROL_PREFIX = "\u0000kubeface:";

/**
 * A serving worker brackets each attempt's standard error with these marks
 * (`start` before the attempt runs, `end` after it ended): the pool reads
 * standard output and standard error apart, and the marks tell it which
 * attempt wrote what on standard error, and when it has read all of it.
 */
export function stderrMark(edge: "start" | "end", attempt: string): string {
  return `${CONTROL_PREFIX}${edge} ${attempt}\u0000`;
}

const MARK = new RegExp(`${CONTROL_PREFIX}(start|end) ([^\u0000]*)\u0000`);

/** A piece of a serving worker's standard error: text, or a {@linkcode stderrMark}. */
export type StderrPiece = { text: string } | { edge: "start" | "end"; attempt: string };

/**
 * A serving worker's standard error as it arrives, cut at its marks (a
 * mark split across chunks is held back until it is whole).
 */
export async function* stderrPieces(
  stream: ReadableStream<Uint8Array>,
): AsyncGenerator<StderrPiece> {
  let text = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    text += chunk;
    for (let match = MARK.exec(text); match; match = MARK.exec(text)) {
      if (match.index > 0) yield { text: text.slice(0, match.index) };
      yield { edge: match[1] as "start" | "end", attempt: match[2]! };
      text = text.slice(match.index + match[0].length);
    }
    // Hold back what may be the start of a mark.
    const nul = text.lastIndexOf("\u0000");
    const rest = text.slice(nul);
    const partial = nul >= 0 &&
      (CONTROL_PREFIX.startsWith(rest) || (rest.startsWith(CONTROL_PREFIX) && rest.length < 1024));
    const keep = partial ? nul : text.length;
    if (keep > 0) yield { text: text.slice(0, keep) };
    text = text.slice(keep);
  }
  if (text) yield { text };
}

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
 * Pool → serving worker: stop this attempt. A running one sees its signal
 * and gets the grace period; one not started yet is dropped.
 */
export interface StopRequest {
  stop: string;
  /** Why, for the task's signal. */
  reason?: string;
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
