/**
 * The task thread's side of the task context (`task(input, ctx)`): the
 * thread has no storage access, so `ctx.checkpoint` serializes the state
 * here and sends it to the worker as a message (the buffer is transferred,
 * not copied), and `ctx.restore` asks the worker for the stored one; both
 * wait for the worker's answer. The stop signal is fired from the worker's
 * stop message.
 *
 * @module
 */

import { findUncloneable } from "../format/clone_path.ts";
import { decodeValue, type EncodedValue, encodeValue } from "../format/records.ts";
import type { TaskContext } from "../task_context.ts";
import type {
  CheckpointReply,
  CheckpointRequest,
  RestoreReply,
  RestoreRequest,
  ThreadMessage,
} from "./protocol.ts";

/** Posts a message to the worker, transferring buffers. */
export type Post = (message: ThreadMessage, transfer?: Transferable[]) => void;

/** The buffer to transfer with a payload: only one the payload owns whole (not a pool slice). */
export function ownBuffer(bytes: Uint8Array | undefined): ArrayBuffer[] {
  return bytes && bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength
    ? [bytes.buffer as ArrayBuffer]
    : [];
}

/**
 * Serialize a checkpoint's state, or say which part of it cannot be.
 *
 * @throws {TypeError} The state cannot be cloned; the message names the part.
 */
export function encodeState(state: unknown, index: number): EncodedValue {
  try {
    return encodeValue(state, `the checkpoint of input ${index}`);
  } catch (error) {
    const found = findUncloneable(state, "state");
    if (!found) throw error;
    throw new TypeError(
      `Cannot checkpoint input ${index}: ${found.path} is ${found.what}, which structured clone cannot copy; checkpoint plain data (numbers, strings, plain objects and arrays, typed arrays, Map, Set, Date) and rebuild the rest after ctx.restore()`,
      { cause: error },
    );
  }
}

function remoteError(record: { name: string; message: string }): Error {
  return Object.assign(new Error(record.message), { name: record.name });
}

/** Checkpoint requests of one thread and the worker's answers to them. */
export class ThreadCheckpoints {
  readonly #post: Post;
  readonly #pending = new Map<number, (reply: CheckpointReply | RestoreReply) => void>();
  #nextId = 0;

  /** Requests go out through `post`; answers come back to {@linkcode reply}. */
  constructor(post: Post) {
    this.#post = post;
  }

  /** The context of one item of one attempt, which may write in `scratch`. */
  context<S>(
    index: number,
    attempt: string,
    signal: AbortSignal,
    scratch: string,
  ): TaskContext<S> {
    return {
      index,
      attempt,
      signal,
      scratch,
      checkpoint: (state: S) => this.#checkpoint(index, state),
      restore: () => this.#restore(index) as Promise<S | undefined>,
    };
  }

  /** Hand the worker's answer to the request waiting for it. */
  reply(message: CheckpointReply | RestoreReply): void {
    const resolve = this.#pending.get(message.id);
    this.#pending.delete(message.id);
    resolve?.(message);
  }

  #request(
    message: Omit<CheckpointRequest, "id"> | Omit<RestoreRequest, "id">,
    transfer: Transferable[],
  ): Promise<CheckpointReply | RestoreReply> {
    const id = this.#nextId++;
    const reply = new Promise<CheckpointReply | RestoreReply>((resolve) =>
      this.#pending.set(id, resolve)
    );
    this.#post({ ...message, id } as CheckpointRequest | RestoreRequest, transfer);
    return reply;
  }

  async #checkpoint(index: number, state: unknown): Promise<void> {
    const { encoding, bytes } = encodeState(state, index);
    const reply = await this.#request(
      { type: "checkpoint", index, encoding, payload: bytes },
      ownBuffer(bytes),
    );
    if ("error" in reply && reply.error) throw remoteError(reply.error);
  }

  async #restore(index: number): Promise<unknown> {
    const reply = await this.#request({ type: "restore", index }, []);
    if (!("payload" in reply)) {
      if (reply.error) throw remoteError(reply.error);
      return undefined;
    }
    try {
      return decodeValue(reply.encoding, reply.payload);
    } catch (error) {
      this.#post({
        type: "warning",
        message: `ignoring the checkpoint of input ${index}: it cannot be decoded (${
          error instanceof Error ? error.message : String(error)
        }); the task starts from the beginning`,
      });
      return undefined;
    }
  }
}
