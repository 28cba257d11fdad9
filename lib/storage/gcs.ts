/**
 * Storage in a Google Cloud Storage bucket, through `@google-cloud/storage`.
 *
 * - Credentials: the library's Application Default Credentials (user login,
 *   `GOOGLE_APPLICATION_CREDENTIALS`, GKE Workload Identity). With
 *   `STORAGE_EMULATOR_HOST` set (`HOST:PORT` or `http://HOST:PORT`), every
 *   request goes to that emulator instead, without credentials.
 * - Streaming: bodies up to `resumableThreshold` go in one request; larger
 *   ones as a resumable upload in `chunkSize` pieces, so memory per upload is
 *   bounded by about one chunk. Downloads stream, resume with a ranged request
 *   after a dropped connection, and are checked against the object's MD5.
 * - Atomicity: GCS makes an object visible only when its upload completes; a
 *   body stream that errors aborts the upload, so nothing appears. `ifAbsent`
 *   uses the precondition `ifGenerationMatch: 0`.
 * - Retries: 408, 429, 5xx and dropped connections are retried with
 *   exponential backoff and full jitter ({@linkcode retry}, whose delays can
 *   be injected) around each single request; a resumable upload's chunks are
 *   retried and resumed by the library itself. Every write may be retried: it
 *   is either a whole-object overwrite with the same bytes or preconditioned,
 *   and an `ifAbsent` put whose first attempt landed but lost its response
 *   recognises its own object by a writer id in the custom metadata.
 *   Permanent errors (404 bucket, 403, no credentials) fail at once with a
 *   message that says what to fix.
 * - A download whose connection fails part way resumes with a ranged request
 *   for the rest (same generation); only when the retries are used up does the
 *   stream error, with a `StorageError`. Bytes are returned as
 *   stored (no gzip transcoding), which is what kubeface itself writes.
 *
 * @module
 */

import type { Bucket, File } from "@google-cloud/storage";
import type { EventEmitter } from "node:events";
import { createHash } from "node:crypto";
import { type Body, checkKey, type ObjectInfo, type PutOptions, type Storage } from "./storage.ts";
import { NotFoundError } from "../errors.ts";
import { emulatorEndpoint, type GcsLocation, parseGcsUrl } from "./gcs_url.ts";
import { type GcsAction, wrapGcsError } from "./gcs_errors.ts";
import { resumableDownload } from "./gcs_read.ts";
import { type Clients, newClients } from "./gcs_client.ts";
import { readHead, upload } from "./gcs_write.ts";
import { checkRetryOptions, httpStatusOf, retry, type RetryOptions } from "./retry.ts";

/** Options of {@linkcode GcsStorage.open}. */
export interface GcsStorageOptions {
  /**
   * API endpoint, e.g. `http://127.0.0.1:4443` for an emulator (then no
   * credentials are used).
   *
   * @default {the STORAGE_EMULATOR_HOST variable if set, else Google's endpoint}
   */
  endpoint?: string;
  /**
   * Check with one metadata request that the bucket exists, so a wrong URL
   * fails at once. Done once per bucket and process.
   *
   * @default {true}
   */
  checkBucket?: boolean;
  /**
   * Bodies up to this many bytes are sent in one request; larger ones as a
   * resumable upload.
   *
   * @default {8388608}
   */
  resumableThreshold?: number;
  /**
   * Size of one request of a resumable upload, a multiple of 256 KiB. About
   * this much memory is held per upload in flight.
   *
   * @default {16777216}
   */
  chunkSize?: number;
  /**
   * Objects per listing request (GCS allows up to 1000).
   *
   * @default {1000}
   */
  pageSize?: number;
  /**
   * How transient failures of single requests and downloads are retried.
   * Resumable uploads use the library's own backoff (first delay about a
   * second) with the same `maxAttempts`, `multiplier` and `maxDelay`.
   *
   * @default {RETRY_DEFAULTS}
   */
  retry?: RetryOptions;
}

/** The defaults of {@linkcode GcsStorageOptions} other than the endpoint. */
export const GCS_DEFAULTS: Readonly<Required<Omit<GcsStorageOptions, "endpoint">>> = Object
  .freeze({
    checkBucket: true,
    resumableThreshold: 8 * 1024 * 1024,
    chunkSize: 16 * 1024 * 1024,
    pageSize: 1000,
    retry: {},
  });

type Resolved = Required<Omit<GcsStorageOptions, "endpoint" | "retry">> & {
  retry: Required<RetryOptions>;
};

const MIN_CHUNK = 256 * 1024;
const WRITER_KEY = "kubeface-writer";
const checkedBuckets = new Map<string, Promise<void>>();

/** A {@linkcode Storage} under `gs://BUCKET/PREFIX/`. */
export class GcsStorage implements Storage {
  /** The root, `gs://BUCKET/` or `gs://BUCKET/PREFIX/`. */
  readonly url: string;
  /** The bucket name. */
  readonly bucketName: string;
  /** Object name prefix of the root, `""` or ending in `/`. */
  readonly prefix: string;
  #bucket: Bucket;
  #uploadBucket: Bucket;
  #options: Resolved;

  private constructor(location: GcsLocation, clients: Clients, options: Resolved) {
    this.url = location.url;
    this.bucketName = location.bucket;
    this.prefix = location.prefix;
    this.#bucket = clients.plain.bucket(location.bucket);
    this.#uploadBucket = clients.uploads.bucket(location.bucket);
    this.#options = options;
  }

  /**
   * Open `gs://BUCKET[/PREFIX]`.
   *
   * @throws {TypeError} The URL, the bucket name or `STORAGE_EMULATOR_HOST` is malformed.
   * @throws {RangeError} An option is out of range.
   * @throws {StorageError} The bucket does not exist or cannot be reached.
   */
  static async open(url: string, options: GcsStorageOptions = {}): Promise<GcsStorage> {
    const location = parseGcsUrl(url);
    const { endpoint: given, ...rest } = options;
    const resolved = { ...GCS_DEFAULTS, ...rest, retry: checkRetryOptions(rest.retry ?? {}) };
    const { resumableThreshold, chunkSize, pageSize } = resolved;
    if (!(Number.isInteger(chunkSize) && chunkSize >= MIN_CHUNK && chunkSize % MIN_CHUNK === 0)) {
      throw new RangeError(
        `Cannot use chunkSize ${chunkSize}: give a multiple of 256 KiB (${MIN_CHUNK} bytes)`,
      );
    }
    if (!(Number.isInteger(resumableThreshold) && resumableThreshold >= 0)) {
      throw new RangeError(`Cannot use resumableThreshold ${resumableThreshold}: give bytes >= 0`);
    }
    if (!(Number.isInteger(pageSize) && pageSize >= 1 && pageSize <= 1000)) {
      throw new RangeError(`Cannot use pageSize ${pageSize}: give 1 to 1000`);
    }
    const endpoint = emulatorEndpoint(given ?? Deno.env.get("STORAGE_EMULATOR_HOST"));
    const storage = new GcsStorage(location, await newClients(endpoint, resolved.retry), resolved);
    if (resolved.checkBucket) await storage.#checkBucket(endpoint ?? "");
    return storage;
  }

  async #checkBucket(endpoint: string): Promise<void> {
    const key = `${endpoint} ${this.bucketName}`;
    let check = checkedBuckets.get(key);
    if (!check) {
      check = this.#retry(() => this.#bucket.getMetadata()).then(() => {}, (error) => {
        checkedBuckets.delete(key);
        throw this.#wrap(error, "", "open");
      });
      checkedBuckets.set(key, check);
    }
    await check;
  }

  /** The GCS object name of a key. */
  objectName(key: string): string {
    return this.prefix + checkKey(key);
  }

  async get(key: string): Promise<ReadableStream<Uint8Array>> {
    const file = this.#bucket.file(this.objectName(key));
    let metadata;
    try {
      [metadata] = await this.#retry(() => file.getMetadata());
    } catch (error) {
      throw this.#wrap(error, key, "read");
    }
    // Pin the generation so a resumed read cannot mix two versions.
    const pinned = this.#bucket.file(file.name, { generation: Number(metadata.generation) });
    return resumableDownload(
      (offset) =>
        pinned.createReadStream({
          validation: false, // resumableDownload checks the MD5 itself, across resumes
          decompress: false,
          ...(offset > 0 ? { start: offset } : {}),
        }).once("response", quietResponse),
      {
        size: Number(metadata.size),
        md5: metadata.md5Hash || undefined,
        crc32c: metadata.crc32c || undefined,
      },
      {
        ...this.#options.retry,
        url: this.url + key,
        wrap: (error) => this.#wrap(error, key, "read"),
      },
    );
  }

  async put(key: string, body: Body, options: PutOptions = {}): Promise<boolean> {
    const { ifAbsent = false, contentType = "application/octet-stream" } = options;
    const name = this.objectName(key);
    const writer = crypto.randomUUID();
    const common = {
      contentType,
      metadata: { contentType, metadata: { [WRITER_KEY]: writer } },
      ...(ifAbsent ? { preconditionOpts: { ifGenerationMatch: 0 } } : {}),
    };
    try {
      const head = body instanceof Uint8Array
        ? { bytes: body, rest: undefined }
        : await readHead(body, this.#options.resumableThreshold);
      if (head.rest === undefined) {
        const md5Hash = createHash("md5").update(head.bytes).digest("base64");
        const file = this.#bucket.file(name);
        await this.#retry(() =>
          file.save(head.bytes, {
            ...common,
            resumable: false,
            validation: false, // the server checks the MD5 declared here
            metadata: { ...common.metadata, md5Hash },
          })
        );
      } else {
        const stream = this.#uploadBucket.file(name).createWriteStream({
          ...common,
          resumable: true,
          chunkSize: this.#options.chunkSize,
          validation: "md5",
        });
        await upload(stream, head.bytes, head.rest);
      }
      return true;
    } catch (error) {
      if (ifAbsent && httpStatusOf(error) === 412) {
        // An object exists. It is ours if an earlier attempt of this put
        // succeeded but its response was lost and the attempt was retried.
        return await this.#writtenBy(name, writer);
      }
      throw this.#wrap(error, key, "write");
    }
  }

  async #writtenBy(name: string, writer: string): Promise<boolean> {
    const file = this.#bucket.file(name);
    try {
      const [metadata] = await this.#retry(() => file.getMetadata());
      return metadata.metadata?.[WRITER_KEY] === writer;
    } catch {
      return false;
    }
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    const file = this.#bucket.file(this.objectName(key));
    try {
      const [metadata] = await this.#retry(() => file.getMetadata());
      return info(key, metadata);
    } catch (error) {
      const wrapped = this.#wrap(error, key, "read");
      if (wrapped instanceof NotFoundError) return undefined;
      throw wrapped;
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    if (prefix !== "") checkKey(prefix.replace(/\/$/, ""));
    let pageToken: string | undefined;
    do {
      const query = {
        prefix: this.prefix + prefix,
        autoPaginate: false,
        maxResults: this.#options.pageSize,
        ...(pageToken ? { pageToken } : {}),
      };
      let files: File[];
      let next: { pageToken?: string } | null | undefined;
      try {
        [files, next] = await this.#retry(() => this.#bucket.getFiles(query));
      } catch (error) {
        throw this.#wrap(error, prefix, "list");
      }
      for (const file of files) {
        const key = file.name.slice(this.prefix.length);
        if (!isKey(key)) continue; // "folder" placeholders and names no key maps to
        yield info(key, file.metadata);
      }
      pageToken = next?.pageToken;
    } while (pageToken);
  }

  async delete(key: string): Promise<void> {
    const file = this.#bucket.file(this.objectName(key));
    try {
      await this.#retry(() => file.delete({ ignoreNotFound: true }));
    } catch (error) {
      throw this.#wrap(error, key, "delete");
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {}

  #retry<T>(fn: () => Promise<T>): Promise<T> {
    return retry(fn, this.#options.retry);
  }

  #wrap(error: unknown, key: string, action: GcsAction): Error {
    return wrapGcsError(error, { bucket: this.bucketName, url: this.url + key, action });
  }
}

/**
 * Under Deno, piping a response body of the library's HTTP layer adds a few
 * more listeners than Node does, and every download printed a
 * MaxListenersExceededWarning. The listeners are released with the stream.
 */
function quietResponse(response: unknown): void {
  (response as Partial<EventEmitter>).setMaxListeners?.(32);
}

function isKey(key: string): boolean {
  try {
    checkKey(key);
    return true;
  } catch {
    return false;
  }
}

function info(key: string, metadata: { size?: unknown; updated?: unknown }): ObjectInfo {
  return {
    key,
    size: Number(metadata.size ?? 0),
    updated: new Date(String(metadata.updated ?? 0)),
  };
}
