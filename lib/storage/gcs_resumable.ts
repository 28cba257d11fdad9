/**
 * A resumable upload over the GCS JSON API, recovering mid-object as
 * "Perform resumable uploads" describes
 * (https://cloud.google.com/storage/docs/performing-resumable-uploads):
 *
 * 1. `POST …/upload/storage/v1/b/BUCKET/o?uploadType=resumable` opens a
 *    session (its URI is the `Location` answered). Nothing is written yet, so
 *    a lost answer is retried safely; `ifGenerationMatch` rides along and is
 *    checked when the object is made.
 * 2. Chunks go as `PUT SESSION` with `Content-Range: bytes FIRST-LAST/TOTAL`
 *    (`/*` while the total is unknown), each a multiple of 256 KiB except the
 *    last. `308 Resume Incomplete` carries `Range: bytes=0-N`: the server has
 *    N+1 bytes, which need not be all that was sent, so the next chunk starts
 *    at N+1 (no `Range`: none stored).
 * 3. When a chunk request fails (5xx, 408, 429, dropped connection, stall),
 *    an empty `PUT` with `Content-Range: bytes *\/*` asks for the status: 308
 *    with the committed range (continue from there), or 200/201 with the
 *    object if the upload completed. It is retried with backoff until it
 *    answers.
 * 4. The final chunk carries `X-Goog-Hash: md5=…` (GCS refuses to complete an
 *    object whose bytes do not match), and the object answered is compared
 *    with what was sent: its size and MD5. Anything else (a server completing
 *    the upload early, dropping or duplicating bytes) is an error, and the
 *    object made is deleted (only that generation), so no corrupt object is
 *    left under the name.
 *
 * The client library's resumable upload takes a 200 answer to its status
 * query for "no bytes stored" and starts over, and its retry delays cannot be
 * injected; hence this module, which uses the library's credentials only.
 *
 * @module
 */

import { releaseMemory } from "../memory.ts";
import { errorMessage, StorageError } from "../errors.ts";
import { type GcsFetch, GcsHttpError, jsonOf } from "./gcs_fetch.ts";
import type { ChunkWindow } from "./gcs_write.ts";
import { backoffDelay, isTransient, retry, type RetryOptions } from "./retry.ts";

/** Where the object goes. */
export interface UploadTarget {
  /** Authorised fetch. */
  fetch: GcsFetch;
  /** API origin, e.g. `https://storage.googleapis.com` or an emulator's. */
  endpoint: string;
  /** Bucket name. */
  bucket: string;
  /** Object name. */
  name: string;
  /** The `gs://` URL, for messages. */
  url: string;
}

/** Options of {@linkcode resumableUpload}. */
export interface ResumableUploadOptions {
  /** MIME type of the object. */
  contentType: string;
  /** Custom metadata; an object of this upload carries it. */
  metadata: Record<string, string>;
  /** Only make the object if its live generation is this (0: if none exists). */
  ifGenerationMatch?: number;
  /** Bytes per chunk request, a multiple of 256 KiB. */
  chunkSize: number;
  /** Retries of the session start and of status queries after a failed chunk. */
  retry: Required<RetryOptions>;
  /** Milliseconds one request may take before it is abandoned (and the upload resumed). */
  stallTimeout: number;
}

/** The object resource of a completed upload (the fields used here). */
export interface GcsObject {
  name: string;
  generation: string;
  size: string;
  md5Hash?: string;
  crc32c?: string;
  metadata?: Record<string, string>;
}

/** What one answer of the session means. */
type Answer =
  | { kind: "committed"; offset: number }
  | { kind: "done"; object: GcsObject }
  | { kind: "gone"; error: GcsHttpError }
  | { kind: "retry"; error: unknown };

/**
 * Upload the body held by `window` in a resumable session and return the
 * object made.
 *
 * @throws {GcsHttpError} The server refused (e.g. 412 for `ifGenerationMatch`, 403).
 * @throws {StorageError} The upload could not be completed, or the object
 *   made does not match what was sent.
 */
export async function resumableUpload(
  target: UploadTarget,
  window: ChunkWindow,
  options: ResumableUploadOptions,
): Promise<GcsObject> {
  const session = await retry(() => startSession(target, options), options.retry);
  const { chunkSize, stallTimeout } = options;
  let sent = 0; // the end of the furthest chunk sent, as an object offset
  let failures = 0;
  for (;;) {
    releaseMemory(); // the last chunk's copies are garbage now
    await window.fill();
    const { start, final } = window;
    const bytes = final ? window.bytes() : window.bytes().subarray(0, chunkSize);
    sent = Math.max(sent, start + bytes.length);
    const range = !final
      ? `bytes ${start}-${start + bytes.length - 1}/*`
      : bytes.length > 0
      ? `bytes ${start}-${start + bytes.length - 1}/${window.total}`
      : `bytes */${window.total}`;
    const headers: Record<string, string> = {
      "content-range": range,
      "content-type": options.contentType,
      ...(final ? { "x-goog-hash": `md5=${window.md5()}` } : {}),
    };
    let answer = await ask(
      () => target.fetch(session, { method: "PUT", headers, body: bytes, timeout: stallTimeout }),
      window,
      sent,
      target,
      stallTimeout,
    );
    while (answer.kind === "retry") {
      failures++;
      if (failures >= options.retry.maxAttempts) {
        throw new StorageError(
          `Cannot write '${target.url}': the upload failed ${failures} times in a row at byte ${window.start} (${
            errorMessage(answer.error)
          }); try again later`,
          target.url,
          { cause: answer.error },
        );
      }
      await options.retry.delayFn(backoffDelay(failures, options.retry));
      answer = await ask(
        () =>
          target.fetch(session, {
            method: "PUT",
            headers: { "content-range": "bytes */*" },
            body: new Uint8Array(0),
            timeout: stallTimeout,
          }),
        window,
        sent,
        target,
        stallTimeout,
      );
    }
    if (answer.kind === "done") return await checked(answer.object, window, sent, target, options);
    if (answer.kind === "gone") return await afterGone(answer.error, window, target, options);
    if (answer.offset > start) failures = 0;
    window.commit(answer.offset);
  }
}

async function startSession(target: UploadTarget, options: ResumableUploadOptions) {
  const { endpoint, bucket, name } = target;
  const query = new URLSearchParams({ uploadType: "resumable", name });
  if (options.ifGenerationMatch !== undefined) {
    query.set("ifGenerationMatch", String(options.ifGenerationMatch));
  }
  const url = `${endpoint}/upload/storage/v1/b/${encodeURIComponent(bucket)}/o?${query}`;
  const response = await target.fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/json; charset=UTF-8",
      "x-upload-content-type": options.contentType,
    },
    body: JSON.stringify({ name, contentType: options.contentType, metadata: options.metadata }),
    timeout: options.stallTimeout,
  });
  if (!response.ok) throw await GcsHttpError.of(response, "starting the upload session");
  await response.body?.cancel();
  const location = response.headers.get("location");
  if (!location) {
    throw new StorageError(
      `Cannot write '${target.url}': the server opened an upload session without a Location header`,
      target.url,
    );
  }
  return location;
}

/** Send one request to the session and say what its answer means. */
async function ask(
  send: () => Promise<Response>,
  window: ChunkWindow,
  sent: number,
  target: UploadTarget,
  timeout: number,
): Promise<Answer> {
  let response: Response;
  try {
    response = await send();
    if (response.status === 308) {
      await response.body?.cancel();
      return { kind: "committed", offset: committedOffset(response, window, sent, target) };
    }
    if (response.status === 200 || response.status === 201) {
      return { kind: "done", object: await jsonOf<GcsObject>(response, target.url, timeout) };
    }
  } catch (error) {
    if (error instanceof StorageError || !isTransient(error)) throw error;
    return { kind: "retry", error };
  }
  const error = await GcsHttpError.of(response, "the upload session");
  if (response.status === 404 || response.status === 410) return { kind: "gone", error };
  if (isTransient(error)) return { kind: "retry", error };
  throw error;
}

/**
 * The offset to continue from, from a 308's `Range: bytes=0-N`. It must lie
 * between what the server confirmed before and what was sent.
 */
function committedOffset(
  response: Response,
  window: ChunkWindow,
  sent: number,
  target: UploadTarget,
): number {
  const header = response.headers.get("range");
  const match = header ? /^bytes=0-(\d+)$/.exec(header.trim()) : null;
  if (header && !match) {
    throw new StorageError(
      `Cannot write '${target.url}': the server answered a malformed Range '${header}'`,
      target.url,
    );
  }
  const offset = match ? Number(match[1]) + 1 : 0;
  if (offset < window.start || offset > sent) {
    throw new StorageError(
      `Cannot write '${target.url}': the server says it has ${offset} bytes, but it had confirmed ${window.start} and ${sent} were sent; the upload cannot continue without losing or inventing bytes, write it again`,
      target.url,
    );
  }
  return offset;
}

/** Check that the object made is the body sent; delete it when it is not. */
async function checked(
  object: GcsObject,
  window: ChunkWindow,
  sent: number,
  target: UploadTarget,
  options: ResumableUploadOptions,
): Promise<GcsObject> {
  // An object made by an upload always has an MD5 on GCS (only composite
  // objects lack one); without it the size is all there is to compare.
  const size = Number(object.size);
  if (
    window.final && size === window.total && (!object.md5Hash || object.md5Hash === window.md5())
  ) {
    return object;
  }
  const problem = !window.final || sent < window.total
    ? `the server completed the upload with ${size} bytes while ${sent} had been sent and more were to come`
    : size !== window.total
    ? `the server made an object of ${size} bytes, but ${window.total} were sent`
    : `the object's MD5 is ${object.md5Hash}, but the bytes sent have MD5 ${window.md5()}`;
  const removed = await deleteGeneration(target, object.generation, options);
  throw new StorageError(
    `Cannot write '${target.url}': ${problem}; ${
      removed
        ? `that object (generation ${object.generation}) was deleted`
        : `that object (generation ${object.generation}) could not be deleted and must not be trusted`
    }, write it again`,
    target.url,
  );
}

/**
 * The session is gone (404/410). If the object of this upload exists whole
 * (the final chunk landed, its answer was lost), the upload is done.
 */
async function afterGone(
  error: GcsHttpError,
  window: ChunkWindow,
  target: UploadTarget,
  options: ResumableUploadOptions,
): Promise<GcsObject> {
  if (window.final) {
    const object = await retry(() => metadataOf(target, options.stallTimeout), options.retry);
    const ours = object &&
      Object.entries(options.metadata).every(([k, v]) => object.metadata?.[k] === v);
    if (ours && Number(object.size) === window.total && object.md5Hash === window.md5()) {
      return object;
    }
  }
  throw new StorageError(
    `Cannot write '${target.url}': the upload session expired or was cancelled after ${window.start} bytes (${error.message}); write it again`,
    target.url,
    { cause: error },
  );
}

async function metadataOf(target: UploadTarget, timeout: number): Promise<GcsObject | undefined> {
  const response = await target.fetch(objectUrl(target), { timeout });
  if (response.status === 404) {
    await response.body?.cancel();
    return undefined;
  }
  if (!response.ok) throw await GcsHttpError.of(response, "reading the object's metadata");
  return await jsonOf<GcsObject>(response, target.url, timeout);
}

async function deleteGeneration(
  target: UploadTarget,
  generation: string,
  options: ResumableUploadOptions,
): Promise<boolean> {
  try {
    await retry(async () => {
      const response = await target.fetch(`${objectUrl(target)}?ifGenerationMatch=${generation}`, {
        method: "DELETE",
        timeout: options.stallTimeout,
      });
      await response.body?.cancel();
      if (!response.ok && response.status !== 404) {
        throw new GcsHttpError(response.status, `deleting answered ${response.status}`);
      }
    }, options.retry);
    return true;
  } catch {
    return false;
  }
}

function objectUrl(target: UploadTarget): string {
  return `${target.endpoint}/storage/v1/b/${encodeURIComponent(target.bucket)}/o/${
    encodeURIComponent(target.name)
  }`;
}
