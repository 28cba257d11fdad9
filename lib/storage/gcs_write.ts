/**
 * Feeding a request body to an upload: read the head of a stream to choose a
 * single-request or a resumable upload, then pump the rest into the library's
 * write stream with backpressure, aborting the upload if the body fails.
 *
 * @module
 */

import type { Writable } from "node:stream";

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
 * Pump `head` then `rest` into a write stream with backpressure, and wait for
 * the upload to complete. If the source fails, the write stream is destroyed
 * before the upload is finalised, so no object appears.
 */
export async function upload(
  stream: Writable,
  head: Uint8Array,
  rest: ReadableStreamDefaultReader<Uint8Array>,
): Promise<void> {
  let failure: unknown;
  const finished = new Promise<void>((resolve, reject) => {
    stream.once("finish", resolve);
    stream.once("error", (error) => {
      failure ??= error;
      reject(error);
    });
  });
  finished.catch(() => {});
  const write = async (chunk: Uint8Array) => {
    if (failure !== undefined) throw failure;
    if (!stream.write(chunk)) {
      await new Promise<void>((resolve, reject) => {
        const onDrain = () => {
          stream.off("error", onError);
          resolve();
        };
        const onError = (error: unknown) => {
          stream.off("drain", onDrain);
          reject(error);
        };
        stream.once("drain", onDrain);
        stream.once("error", onError);
      });
    }
  };
  try {
    await write(head);
    for (;;) {
      const { done, value } = await rest.read();
      if (done) break;
      await write(value);
    }
  } catch (error) {
    stream.destroy(error instanceof Error ? error : new Error(String(error)));
    await rest.cancel(error).catch(() => {});
    throw failure ?? error;
  }
  stream.end();
  await finished;
}
