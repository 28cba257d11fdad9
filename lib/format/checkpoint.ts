/**
 * Checkpoints as they are stored: `jobs/<key>/checkpoints/<input>` holds the
 * last state a task saved for one input with `ctx.checkpoint(state)`, as a
 * record (see `records.ts`) that each new checkpoint replaces whole. It is
 * removed once the task's result is stored.
 *
 * The header carries a format version, and the record its checksums (as
 * every record does), so a checkpoint damaged in storage (truncated, a
 * flipped byte) is recognised and ignored, and the task starts from zero,
 * rather than being restored as wrong state.
 *
 * @module
 */

import { CorruptObjectError, errorMessage } from "../errors.ts";
import { type EncodedValue, encodeRecord, readRawRecord, type RecordHeader } from "./records.ts";

/** The checkpoint format this version writes and reads. */
export const CHECKPOINT_FORMAT = 1;

/** Header of a checkpoint record. */
export interface CheckpointHeader extends RecordHeader {
  kind: "checkpoint";
  /** Format version; a reader ignores a checkpoint of a format it does not know. */
  format: typeof CHECKPOINT_FORMAT;
  job: string;
  /** The task that wrote it. */
  task: number;
  /** The input it belongs to (`ctx.index`). */
  input: number;
  /** The attempt that wrote it. */
  attempt: string;
  /** When it was written (ISO 8601). */
  writtenAt: string;
}

/** Who wrote a checkpoint: every header field that is not about the payload. */
export type CheckpointOrigin = Pick<
  CheckpointHeader,
  "job" | "task" | "input" | "attempt" | "writtenAt"
>;

/** The chunks of a checkpoint record for a serialized state. */
export function encodeCheckpoint(origin: CheckpointOrigin, value: EncodedValue): Uint8Array[] {
  const header: Omit<CheckpointHeader, "encoding" | "size"> = {
    kind: "checkpoint",
    format: CHECKPOINT_FORMAT,
    ...origin,
  };
  return encodeRecord(header, value);
}

/** A stored checkpoint cannot be used: it is damaged, or not this input's. */
export class CheckpointCorruptError extends Error {
  /** Build the error; `message` says what is wrong. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "CheckpointCorruptError";
  }
}

/**
 * Read and check a checkpoint record: its header must be a checkpoint of
 * `expected.job` and `expected.input` in a known format, and its checksums
 * must hold.
 *
 * @throws {CheckpointCorruptError} The record is truncated, damaged or not
 * this input's checkpoint. Storage errors are thrown as they are.
 */
export async function readCheckpoint(
  stream: ReadableStream<Uint8Array>,
  expected: { job: string; input: number },
): Promise<{ header: CheckpointHeader; payload: Uint8Array }> {
  const what = `the checkpoint of input ${expected.input}`;
  let record: { header: CheckpointHeader; payload: Uint8Array };
  try {
    record = await readRawRecord<CheckpointHeader>(stream, what);
  } catch (error) {
    if (error instanceof CorruptObjectError) {
      throw new CheckpointCorruptError(errorMessage(error), { cause: error });
    }
    throw error;
  }
  const { header, payload } = record;
  const wrong = (why: string) =>
    new CheckpointCorruptError(`Cannot use ${what} of job '${expected.job}': ${why}`);
  if (header?.kind !== "checkpoint") throw wrong("it is not a checkpoint record");
  if (header.format !== CHECKPOINT_FORMAT) {
    throw wrong(
      `it has format ${header.format}, and this kubeface reads format ${CHECKPOINT_FORMAT}`,
    );
  }
  if (header.job !== expected.job || header.input !== expected.input) {
    throw wrong(`it belongs to input ${header.input} of job '${header.job}'`);
  }
  if (!["v8", "bytes", "none"].includes(header.encoding)) {
    throw wrong(`its encoding '${header.encoding}' is unknown`);
  }
  return { header, payload };
}
