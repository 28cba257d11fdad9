/**
 * The worker's side of an attempt's checkpoints: it stores what the task
 * thread sends (`ctx.checkpoint`), reads back the last one (`ctx.restore`),
 * and removes them once the task's result is stored. The thread has no
 * storage access; it only ever sees the serialized state.
 *
 * A checkpoint that arrives after another attempt stored the task's result
 * (a losing speculative copy saving its state as it is stopped) is removed
 * again: it is written first and the results are looked at after, so
 * whichever of the two writes comes last, no checkpoint is left behind.
 *
 * @module
 */

import { CheckpointCorruptError, encodeCheckpoint, readCheckpoint } from "../format/checkpoint.ts";
import type { JobLayout } from "../format/layout.ts";
import { recordBody } from "../format/records.ts";
import { errorMessage, NotFoundError } from "../errors.ts";
import type { ErrorRecord } from "../format/manifest.ts";
import type { Storage } from "../storage/storage.ts";
import type {
  CheckpointReply,
  CheckpointRequest,
  RestoreReply,
  RestoreRequest,
} from "./protocol.ts";

/** What an attempt's checkpoints need. */
export interface AttemptCheckpointsOptions {
  storage: Storage;
  layout: JobLayout;
  task: number;
  attempt: string;
  /**
   * The task's inputs (its first and how many): the only ones it may
   * checkpoint or restore, whatever index the thread sends.
   */
  inputs: { first: number; count: number };
  /** Writes a line to the attempt's log. */
  warn: (message: string) => void;
}

function errorReply(error: unknown): { name: string; message: string; stack: string } {
  return { name: "Error", message: errorMessage(error), stack: "" };
}

/** Checkpoints of one attempt: stored in the order the task made them. */
export class AttemptCheckpoints {
  readonly #options: AttemptCheckpointsOptions;
  /** Inputs whose checkpoint this attempt wrote or restored: to remove after the result. */
  readonly #touched = new Set<number>();
  #writes: Promise<unknown> = Promise.resolve();
  /** A storage failure the task was told of; the attempt is then an infrastructure failure. */
  failure: Error | undefined;

  /** Checkpoints of `options.attempt` of `options.task`. */
  constructor(options: AttemptCheckpointsOptions) {
    this.#options = options;
  }

  /** Store a checkpoint (after those sent before it); the reply says if it failed. */
  checkpoint(request: CheckpointRequest): Promise<CheckpointReply> {
    const outside = this.#outside(request.index, "store");
    if (outside) return Promise.resolve({ type: "checkpointed", id: request.id, error: outside });
    const write = this.#writes.then(() => this.#write(request));
    this.#writes = write.catch(() => {});
    return write.then(
      (): CheckpointReply => ({ type: "checkpointed", id: request.id }),
      (error): CheckpointReply => {
        this.failure ??= error instanceof Error ? error : new Error(errorMessage(error));
        return {
          type: "checkpointed",
          id: request.id,
          error: errorReply(
            new Error(
              `Cannot store the checkpoint of input ${request.index}: ${errorMessage(error)}`,
            ),
          ),
        };
      },
    );
  }

  /** The stored checkpoint of an input; none when missing or damaged (with a warning). */
  async restore(request: RestoreRequest): Promise<RestoreReply> {
    const { storage, layout } = this.#options;
    const { index, id } = request;
    const outside = this.#outside(index, "read");
    if (outside) return { type: "restored", id, error: outside };
    await this.#writes; // this attempt's own last checkpoint, if it made one
    try {
      const { header, payload } = await readCheckpoint(
        await storage.get(layout.checkpoint(index)),
        { job: layout.key, input: index },
      );
      this.#touched.add(index);
      return { type: "restored", id, encoding: header.encoding, payload };
    } catch (error) {
      if (error instanceof NotFoundError) return { type: "restored", id };
      if (error instanceof CheckpointCorruptError) {
        this.#touched.add(index);
        this.#options.warn(
          `ignoring the checkpoint of input ${index} (${
            storage.url + layout.checkpoint(index)
          }): ${error.message}; the task starts from the beginning`,
        );
        return { type: "restored", id };
      }
      this.failure ??= error instanceof Error ? error : new Error(errorMessage(error));
      return {
        type: "restored",
        id,
        error: errorReply(
          new Error(`Cannot read the checkpoint of input ${index}: ${errorMessage(error)}`),
        ),
      };
    }
  }

  /** Wait for every checkpoint sent so far to be stored (or to fail). */
  async settled(): Promise<void> {
    await this.#writes;
  }

  /**
   * Remove the checkpoints this attempt wrote or restored: call once the
   * task's result is stored. Failures are ignored (the master removes
   * leftovers it finds).
   */
  async removeAll(): Promise<void> {
    await this.#writes;
    const { storage, layout } = this.#options;
    for (const index of this.#touched) {
      await storage.delete(layout.checkpoint(index)).catch(() => {});
    }
  }

  /** Why a request for `index` is refused, when it is not one of the task's inputs. */
  #outside(index: number, what: string): ErrorRecord | undefined {
    const { task, inputs: { first, count } } = this.#options;
    if (Number.isInteger(index) && index >= first && index < first + count) return undefined;
    return {
      name: "RangeError",
      message: `Cannot ${what} the checkpoint of input ${index} from task ${task}: it runs input${
        count > 1 ? `s ${first} to ${first + count - 1}` : ` ${first}`
      } only`,
      stack: "",
    };
  }

  async #write(request: CheckpointRequest): Promise<void> {
    const { storage, layout, task, attempt } = this.#options;
    const key = layout.checkpoint(request.index);
    const chunks = encodeCheckpoint(
      {
        job: layout.key,
        task,
        input: request.index,
        attempt,
        writtenAt: new Date().toISOString(),
      },
      { encoding: request.encoding, bytes: request.payload },
    );
    await storage.put(key, recordBody(chunks));
    this.#touched.add(request.index);
    if (await this.#resultStored()) await storage.delete(key);
  }

  /** Whether some attempt of the task stored its result. */
  async #resultStored(): Promise<boolean> {
    const { storage, layout, task } = this.#options;
    for await (const { key } of storage.list(layout.taskResults(task))) {
      if (key.endsWith(".ok")) return true;
    }
    return false;
  }
}
