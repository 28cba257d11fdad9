/**
 * The Storage seam: the only channel between the master and the workers.
 * Implementations are picked by URL in {@linkcode openStorage} and nowhere
 * else.
 *
 * @module
 */

/** Metadata of one stored object. */
export interface ObjectInfo {
  /** Key relative to the storage root, e.g. `jobs/squares-1/manifest.json`. */
  key: string;
  /** Size in bytes. */
  size: number;
  /** Last modification time. */
  updated: Date;
}

/** Options of {@linkcode Storage.put}. */
export interface PutOptions {
  /**
   * Only create the object if no object exists under the key. When one does,
   * `put` writes nothing and returns `false`.
   *
   * @default {false}
   */
  ifAbsent?: boolean;
  /**
   * MIME type, used by storages that serve objects (GCS).
   *
   * @default {"application/octet-stream"}
   */
  contentType?: string;
}

/** The body of an object: bytes, or a stream of byte chunks. */
export type Body = Uint8Array | ReadableStream<Uint8Array>;

/**
 * A flat key space of immutable objects under one root URL.
 *
 * Writes are atomic: a reader sees a whole object or none, even when the
 * writer dies half way.
 */
export interface Storage extends AsyncDisposable {
  /** The root URL, normalised, e.g. `file:///tmp/runs/` or `gs://bucket/runs/`. */
  readonly url: string;
  /** Stream an object's bytes. Throws `NotFoundError` if it does not exist. */
  get(key: string): Promise<ReadableStream<Uint8Array>>;
  /** Write an object atomically. Returns `false` only when `ifAbsent` found one. */
  put(key: string, body: Body, options?: PutOptions): Promise<boolean>;
  /** Metadata of an object, or `undefined` if it does not exist. */
  stat(key: string): Promise<ObjectInfo | undefined>;
  /** Every object whose key starts with `prefix`, in no particular order, paged lazily. */
  list(prefix: string): AsyncIterable<ObjectInfo>;
  /** Delete an object. Deleting a missing object is not an error. */
  delete(key: string): Promise<void>;
}

/**
 * Open the storage for a URL: `gs://BUCKET[/PREFIX]` for Google Cloud
 * Storage, or a local directory given as a path or a `file://` URL.
 *
 * @example Write and read an object
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStorage } from "@kubeface/kubeface";
 *
 * await using storage = await openStorage(await Deno.makeTempDir());
 * await storage.put("a/b.txt", new TextEncoder().encode("hello"));
 * const text = await new Response(await storage.get("a/b.txt")).text();
 * assert.equal(text, "hello");
 * assert.equal((await storage.stat("a/b.txt"))?.size, 5);
 * assert.equal(await storage.put("a/b.txt", new Uint8Array(), { ifAbsent: true }), false);
 * ```
 *
 * @throws {TypeError} The URL has a scheme no storage handles.
 */
export async function openStorage(url: string | URL): Promise<Storage> {
  const text = String(url);
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(text)?.[1]?.toLowerCase();
  if (scheme === "gs") {
    const { GcsStorage } = await import("./gcs.ts");
    return GcsStorage.open(text);
  }
  if (scheme === undefined || scheme === "file") {
    const { LocalStorage } = await import("./local.ts");
    return LocalStorage.open(text);
  }
  throw new TypeError(
    `Cannot open storage '${text}': the scheme '${scheme}' is not supported; use a local directory or gs://BUCKET/PREFIX`,
  );
}

/**
 * Check a storage key: relative, `/`-separated, no empty, `.` or `..` parts.
 *
 * @throws {TypeError} The key is malformed.
 */
export function checkKey(key: string): string {
  if (
    key === "" || key.startsWith("/") || key.endsWith("/") ||
    key.split("/").some((part) => part === "" || part === "." || part === "..")
  ) {
    throw new TypeError(
      `Cannot use storage key '${key}': keys are relative paths like 'jobs/x/manifest.json' without empty, '.' or '..' parts`,
    );
  }
  return key;
}

const held = new WeakMap<ReadableStream<Uint8Array>, Uint8Array>();

/**
 * A stream over bytes already in memory, for a storage that read a small
 * object at once. {@linkcode heldBytes} takes the bytes back without the
 * cost of reading the stream.
 */
export function bytesStream(bytes: Uint8Array): ReadableStream<Uint8Array> {
  const stream = ReadableStream.from([bytes]);
  held.set(stream, bytes);
  return stream;
}

/**
 * The bytes behind a stream made by {@linkcode bytesStream}, if nothing has
 * read from it; the caller then owns the stream and must not read it.
 */
export function heldBytes(stream: ReadableStream<Uint8Array>): Uint8Array | undefined {
  const bytes = held.get(stream);
  if (bytes === undefined || stream.locked) return undefined;
  held.delete(stream);
  return bytes;
}

/** Read a whole object into memory. Use only for small objects. */
export async function readBytes(storage: Storage, key: string): Promise<Uint8Array> {
  const stream = await storage.get(key);
  return heldBytes(stream) ?? await new Response(stream).bytes();
}
