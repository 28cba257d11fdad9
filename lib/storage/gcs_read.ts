/**
 * A download that survives dropped connections: when the body stream of one
 * request fails with a transient error, the read goes on with a ranged request
 * from the first byte not yet delivered, so the consumer sees one unbroken
 * stream. The whole object is checked against the MD5 (or, when the object has
 * none, the CRC32C) recorded in its metadata; a mismatch errors the stream
 * before it closes.
 *
 * The client library validates only whole-object downloads, so ranged resumes
 * would go unchecked; hashing here covers both.
 *
 * @module
 */

import { createHash } from "node:crypto";
import type { Readable } from "node:stream";
import { StorageError } from "../errors.ts";
import { Crc32c } from "../crc32c.ts";
import { backoffDelay, checkRetryOptions, httpStatusOf, type RetryOptions } from "./retry.ts";

/** What the object's metadata promises. */
export interface ExpectedObject {
  /** Size in bytes. */
  size: number;
  /** Base64 MD5 digest, if the object has one (composite objects do not). */
  md5?: string;
  /** Base64 big-endian CRC32C, used when `md5` is missing. */
  crc32c?: string;
}

/** Incremental digest over the delivered bytes. */
interface Digest {
  update(bytes: Uint8Array): void;
  /** Base64 digest of everything so far. */
  result(): string;
}

function md5Digest(): Digest {
  const hash = createHash("md5");
  return {
    update: (bytes) => void hash.update(bytes),
    result: () => hash.digest("base64"),
  };
}

function crc32cDigest(): Digest {
  const crc = new Crc32c();
  return { update: (bytes) => void crc.update(bytes), result: () => crc.base64() };
}

/** Options of {@linkcode resumableDownload}. */
export interface ResumableDownloadOptions extends RetryOptions {
  /** `gs://` URL of the object, for error messages. */
  url: string;
  /** Wrap an error that ends the download (not retried, or retries used up). */
  wrap: (error: unknown) => Error;
  /**
   * Milliseconds a response may go without delivering a byte before it is
   * abandoned and the read resumes with a new request.
   *
   * @default {120000}
   */
  stallTimeout?: number;
}

/**
 * A web stream of an object's bytes. `open(offset)` starts a request for the
 * bytes from `offset` on (of the same generation). Consecutive failures
 * without progress are limited by `maxAttempts`; progress resets the count.
 */
export function resumableDownload(
  open: (offset: number) => Readable,
  expected: ExpectedObject,
  options: ResumableDownloadOptions,
): ReadableStream<Uint8Array> {
  const retry = checkRetryOptions(options);
  const { url, wrap, stallTimeout = 120_000 } = options;
  const digest = expected.md5 ? md5Digest() : expected.crc32c ? crc32cDigest() : undefined;
  const wanted = expected.md5 ?? expected.crc32c;
  let offset = 0;
  let failures = 0;
  let source: Readable | undefined;
  let iterator: AsyncIterator<Uint8Array> | undefined;

  const drop = () => {
    source?.destroy();
    source = undefined;
    iterator = undefined;
  };

  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      for (;;) {
        try {
          if (!iterator) {
            source = open(offset);
            iterator = source[Symbol.asyncIterator]() as AsyncIterator<Uint8Array>;
          }
          const stalled = source;
          const timer = setTimeout(() => stalled?.destroy(stallError(stallTimeout)), stallTimeout);
          let step: IteratorResult<Uint8Array>;
          try {
            step = await iterator.next();
          } finally {
            clearTimeout(timer);
          }
          const { done, value } = step;
          if (done) {
            if (offset < expected.size) {
              throw new StorageError(
                `Cannot read '${url}': the response ended at byte ${offset} of ${expected.size} (unexpected end)`,
                url,
              );
            }
            drop();
            if (digest && wanted && digest.result() !== wanted) {
              controller.error(
                new StorageError(
                  `Cannot read '${url}': the bytes received do not match the object's ${
                    expected.md5 ? "MD5" : "CRC32C"
                  } checksum; the download was corrupted, read it again`,
                  url,
                ),
              );
              return;
            }
            controller.close();
            return;
          }
          if (value.length === 0) continue;
          if (offset + value.length > expected.size) {
            drop();
            controller.error(
              new StorageError(
                `Cannot read '${url}': received more than the object's ${expected.size} bytes`,
                url,
              ),
            );
            return;
          }
          offset += value.length;
          failures = 0;
          digest?.update(value);
          controller.enqueue(new Uint8Array(value.buffer, value.byteOffset, value.byteLength));
          return;
        } catch (error) {
          drop();
          if (offset > 0 && httpStatusOf(error) === 404) {
            // The generation read so far is gone: never stitch another one to it.
            controller.error(
              new StorageError(
                `Cannot read '${url}': the object was replaced or deleted after ${offset} of its ${expected.size} bytes were read; read it again`,
                url,
                { cause: error },
              ),
            );
            return;
          }
          failures++;
          if (failures >= retry.maxAttempts || !retry.isRetryable(error)) {
            controller.error(wrap(error));
            return;
          }
          await retry.delayFn(backoffDelay(failures, retry));
        }
      }
    },
    cancel() {
      drop();
    },
  });
}

/** The error that abandons a stalled response; transient, so the read resumes. */
function stallError(ms: number): Error {
  return Object.assign(new Error(`no bytes arrived for ${ms} ms (stalled response)`), {
    code: "ETIMEDOUT",
  });
}
