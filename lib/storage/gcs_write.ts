/**
 * Feeding a request body to an upload: read the head of a stream to choose a
 * single-request or a resumable upload, and hold the bytes of a resumable
 * upload that the server has not confirmed yet.
 *
 * @module
 */

import { createHash } from "node:crypto";

/**
 * Read the start of a stream: up to `limit` bytes in one array when the stream
 * ends within them (`rest` undefined), else the bytes read so far and a reader
 * for the rest.
 */
export async function readHead(
  body: ReadableStream<Uint8Array>,
  limit: number,
): Promise<{ bytes: Uint8Array; rest: ReadableStreamDefaultReader<Uint8Array> | undefined }> {
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size <= limit) {
      const { done, value } = await reader.read();
      if (done) {
        reader.releaseLock();
        return { bytes: concat(chunks, size), rest: undefined };
      }
      chunks.push(value);
      size += value.length;
    }
  } catch (error) {
    reader.releaseLock();
    throw error;
  }
  return { bytes: concat(chunks, size), rest: reader };
}

function concat(chunks: Uint8Array[], size: number): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.length;
  }
  return bytes;
}

/**
 * The bytes of an upload not yet stored: at most one chunk, read from the
 * body as needed, with the MD5 of everything read so far. After `fill()`, the
 * window holds a whole chunk, or the rest of the body when `final`.
 * `commit(offset)` drops what the server confirmed, so a chunk the server took
 * only part of is resent from the first byte it lacks.
 */
export class ChunkWindow {
  readonly #chunkSize: number;
  readonly #source: ReadableStreamDefaultReader<Uint8Array> | undefined;
  readonly #md5 = createHash("md5");
  #digest: string | undefined;
  #queue: Uint8Array[];
  #buffer: Uint8Array<ArrayBuffer>;
  #length = 0;
  #start = 0;
  #ended: boolean;

  /** A window over `head` then `rest` (none: the body is `head`). */
  constructor(
    head: Uint8Array,
    rest: ReadableStreamDefaultReader<Uint8Array> | undefined,
    chunkSize: number,
  ) {
    this.#chunkSize = chunkSize;
    this.#source = rest;
    this.#ended = rest === undefined;
    this.#queue = head.length ? [head] : [];
    this.#md5.update(head);
    this.#buffer = new Uint8Array(chunkSize);
  }

  /** Object offset of the first byte held. */
  get start(): number {
    return this.#start;
  }

  /** Whether the bytes held are the end of the body. Meaningful after `fill()`. */
  get final(): boolean {
    return this.#ended && this.#queue.length === 0;
  }

  /** The bytes held: one chunk, or the rest of the body when `final`. */
  bytes(): Uint8Array<ArrayBuffer> {
    return this.#buffer.subarray(0, this.#length);
  }

  /** The body's size; only known once `final`. */
  get total(): number {
    return this.#start + this.#length;
  }

  /** Base64 MD5 of the whole body; only once `final`. */
  md5(): string {
    this.#digest ??= this.#md5.digest("base64");
    return this.#digest;
  }

  /** Read until a whole chunk is held or the body ended, and whether more follows. */
  async fill(): Promise<void> {
    while (this.#length < this.#chunkSize) {
      const piece = this.#queue.shift() ?? await this.#read();
      if (!piece) break;
      const take = Math.min(piece.length, this.#chunkSize - this.#length);
      this.#buffer.set(piece.subarray(0, take), this.#length);
      this.#length += take;
      if (take < piece.length) this.#queue.unshift(piece.subarray(take));
    }
    if (this.#queue.length === 0 && !this.#ended) {
      const next = await this.#read();
      if (next) this.#queue.push(next);
    }
  }

  /**
   * The server has every byte before `offset`: drop them.
   *
   * @throws {RangeError} `offset` is outside the bytes held.
   */
  commit(offset: number): void {
    const drop = offset - this.#start;
    if (drop < 0 || drop > this.#length) {
      throw new RangeError(
        `Cannot commit offset ${offset}: the window holds bytes ${this.#start} to ${this.total}`,
      );
    }
    this.#buffer.copyWithin(0, drop, this.#length);
    this.#length -= drop;
    this.#start = offset;
  }

  /** Stop reading the body (the upload failed). */
  async cancel(reason: unknown): Promise<void> {
    await this.#source?.cancel(reason).catch(() => {});
  }

  async #read(): Promise<Uint8Array | undefined> {
    while (!this.#ended) {
      const { done, value } = await this.#source!.read();
      if (done) {
        this.#ended = true;
        return undefined;
      }
      if (value.length === 0) continue;
      this.#md5.update(value);
      return value;
    }
    return undefined;
  }
}
