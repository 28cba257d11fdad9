/**
 * Storage in a Google Cloud Storage bucket, through `@google-cloud/storage`
 * and, for resumable uploads, the JSON API with the library's credentials.
 *
 * - Credentials: the library's Application Default Credentials (user login,
 *   `GOOGLE_APPLICATION_CREDENTIALS`, GKE Workload Identity). With
 *   `STORAGE_EMULATOR_HOST` set (`HOST:PORT` or `http://HOST:PORT`), every
 *   request goes to that emulator instead, without credentials.
 * - Streaming: bodies up to `resumableThreshold` go in one request; larger
 *   ones as a resumable upload in `chunkSize` pieces, so memory per upload is
 *   bounded by about one chunk. A chunk request that fails is followed by a
 *   status query and the upload continues from the byte the server lacks
 *   (`gcs_resumable.ts`); the object made is checked against the size and MD5
 *   of what was sent, and deleted if it differs. Downloads stream, resume with
 *   a ranged request of the same generation after a dropped or stalled
 *   connection, and are checked against the object's MD5.
 * - Atomicity: GCS makes an object visible only when its upload completes; a
 *   body stream that errors abandons the upload, so nothing appears.
 * - Retries: 408, 429, 5xx and dropped connections are retried with
 *   exponential backoff and full jitter ({@linkcode retry}, whose delays can
 *   be injected). Reads are idempotent. Writes are made idempotent with
 *   preconditions, as the GCS retry strategy asks for object inserts and
 *   deletes: every single-request write carries `ifGenerationMatch` (0 for a
 *   new object, else the generation last seen), and a 412 is resolved by
 *   looking at the object (a writer id in its custom metadata tells an
 *   earlier attempt of the same put, whose answer was lost); every delete
 *   names the generation it removes. Permanent errors (404 bucket, 403, no
 *   credentials) fail at once with a message that says what to fix.
 * - Bytes are returned as stored (no gzip transcoding), which is what
 *   kubeface itself writes.
 *
 * @module
 */

import { readEnv } from "../env.ts";
import type { Bucket, File } from "@google-cloud/storage";
import type { EventEmitter } from "node:events";
import { type Body, checkKey, type ObjectInfo, type PutOptions, type Storage } from "./storage.ts";
import { NotFoundError } from "../errors.ts";
import { emulatorEndpoint, type GcsLocation, parseGcsUrl } from "./gcs_url.ts";
import { type GcsAction, wrapGcsError } from "./gcs_errors.ts";
import { resumableDownload } from "./gcs_read.ts";
import { type Clients, newClients } from "./gcs_client.ts";
import { ChunkWindow, readHead } from "./gcs_write.ts";
import { Generations } from "./gcs_generations.ts";
import {
  type Conditional,
  deleteLive,
  liveObject,
  putOnce,
  WRITER_KEY,
} from "./gcs_conditional.ts";
import { resumableUpload } from "./gcs_resumable.ts";
import { RequestSlots } from "./slots.ts";
import {
  checkRetryOptions,
  httpStatusOf,
  retry,
  type RetryOptions,
  withDeadline,
} from "./retry.ts";

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
   * How transient failures are retried: single requests, status queries of
   * a resumable upload, and resumed downloads (consecutive failures without
   * progress).
   *
   * @default {RETRY_DEFAULTS}
   */
  retry?: RetryOptions;
  /**
   * Most requests in flight at once (metadata, listing pages, writes up to
   * `resumableThreshold`, deletes); the others wait their turn. Bounds the
   * connections a burst opens, e.g. a 100,000-task master checking the
   * results of thousands of pods reported at once. Downloads and resumable
   * upload chunks are not counted.
   *
   * @default {64}
   */
  maxConcurrentRequests?: number;
  /**
   * Milliseconds a download may go without receiving a byte, or a request
   * (metadata, listing, upload chunk) without its answer, before it is
   * abandoned and retried or resumed. It bounds the time to send one chunk,
   * so keep it well above `chunkSize` divided by the slowest expected upload
   * rate.
   *
   * @default {120000}
   */
  stallTimeout?: number;
}

/** The defaults of {@linkcode GcsStorageOptions} other than the endpoint. */
export const GCS_DEFAULTS: Readonly<Required<Omit<GcsStorageOptions, "endpoint">>> = Object
  .freeze({
    checkBucket: true,
    resumableThreshold: 8 * 1024 * 1024,
    chunkSize: 16 * 1024 * 1024,
    pageSize: 1000,
    retry: {},
    maxConcurrentRequests: 64,
    stallTimeout: 120_000,
  });

type Resolved = Required<Omit<GcsStorageOptions, "endpoint" | "retry">> & {
  retry: Required<RetryOptions>;
};

const MIN_CHUNK = 256 * 1024;
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
  #clients: Clients;
  #options: Resolved;
  #generations = new Generations();
  #conditional: Conditional;
  #slots: RequestSlots;

  private constructor(location: GcsLocation, clients: Clients, options: Resolved) {
    this.url = location.url;
    this.bucketName = location.bucket;
    this.prefix = location.prefix;
    this.#bucket = clients.plain.bucket(location.bucket);
    this.#clients = clients;
    this.#options = options;
    this.#slots = new RequestSlots(options.maxConcurrentRequests);
    this.#conditional = {
      bucket: this.#bucket,
      generations: this.#generations,
      retry: (fn) => this.#retry(fn),
      maxAttempts: options.retry.maxAttempts,
    };
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
    const { resumableThreshold, chunkSize, pageSize, maxConcurrentRequests, stallTimeout } =
      resolved;
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
    if (!(Number.isInteger(maxConcurrentRequests) && maxConcurrentRequests >= 1)) {
      throw new RangeError(
        `Cannot use maxConcurrentRequests ${maxConcurrentRequests}: give an integer >= 1`,
      );
    }
    if (!(stallTimeout > 0)) {
      throw new RangeError(`Cannot use stallTimeout ${stallTimeout}: give milliseconds > 0`);
    }
    const endpoint = emulatorEndpoint(given ?? readEnv("STORAGE_EMULATOR_HOST"));
    const storage = new GcsStorage(location, await newClients(endpoint, stallTimeout), resolved);
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
    this.#generations.set(file.name, metadata.generation);
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
        stallTimeout: this.#options.stallTimeout,
      },
    );
  }

  async put(key: string, body: Body, options: PutOptions = {}): Promise<boolean> {
    const { ifAbsent = false, contentType = "application/octet-stream" } = options;
    const name = this.objectName(key);
    const writer = crypto.randomUUID();
    try {
      const head = body instanceof Uint8Array
        ? { bytes: body, rest: undefined }
        : await readHead(body, this.#options.resumableThreshold);
      if (head.rest === undefined && head.bytes.length <= this.#options.resumableThreshold) {
        return await putOnce(this.#conditional, name, head.bytes, {
          ifAbsent,
          contentType,
          writer,
        });
      }
      const window = new ChunkWindow(head.bytes, head.rest, this.#options.chunkSize);
      try {
        const object = await resumableUpload(
          { ...this.#clients, bucket: this.bucketName, name, url: this.url + key },
          window,
          {
            contentType,
            metadata: { [WRITER_KEY]: writer },
            // A session completes at most once, so only ifAbsent needs a precondition.
            ...(ifAbsent ? { ifGenerationMatch: 0 } : {}),
            chunkSize: this.#options.chunkSize,
            retry: this.#options.retry,
            stallTimeout: this.#options.stallTimeout,
          },
        );
        this.#generations.set(name, object.generation);
        return true;
      } catch (error) {
        await window.cancel(error);
        if (ifAbsent && httpStatusOf(error) === 412) {
          return (await liveObject(this.#conditional, name))?.writer === writer;
        }
        throw error;
      }
    } catch (error) {
      throw this.#wrap(error, key, "write");
    }
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    const file = this.#bucket.file(this.objectName(key));
    try {
      const [metadata] = await this.#retry(() => file.getMetadata());
      this.#generations.set(file.name, metadata.generation);
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
        this.#generations.set(file.name, file.metadata.generation);
        yield info(key, file.metadata);
      }
      pageToken = next?.pageToken;
    } while (pageToken);
  }

  async delete(key: string): Promise<void> {
    try {
      await deleteLive(this.#conditional, this.objectName(key));
    } catch (error) {
      throw this.#wrap(error, key, "delete");
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {}

  /**
   * Retry a single request, each attempt given up after `stallTimeout` from when it got one of
   * the `maxConcurrentRequests` slots.
   */
  #retry<T>(fn: () => Promise<T>): Promise<T> {
    const { stallTimeout, retry: options } = this.#options;
    return retry(() => this.#slots.run(() => withDeadline(fn(), stallTimeout)), options);
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
