/**
 * Shared values: a large value stored once (content-addressed, under
 * `shared/<sha256>`) and handed to every task as a small reference, which
 * the worker loads lazily and at most once per process — the counterpart of
 * the original kubeface's RemoteObject.
 *
 * ```ts ignore
 * const table = await client.share(bigTable);              // stored once
 * client.map("./task.ts", { inputs: ids.map((id) => ({ id, table })) });
 * // task.ts: export async function task({ id, table }) { (await table.get())[id] }
 * ```
 *
 * @module
 */

import { createHash } from "node:crypto";
import {
  decodeValue,
  encodeRecord,
  encodeValue,
  type Encoding,
  readRawRecord,
  recordBody,
} from "./serialize.ts";
import { openStorage, type Storage } from "./storage/storage.ts";

const KIND = "kubeface.shared";

/** A reference to a stored value. Passing it in an input costs a few bytes. */
export class Shared<T> {
  /** Marks the object as a reference after it crossed storage. */
  readonly kind: "kubeface.shared" = KIND;
  /** Storage root URL holding the value. */
  readonly storage: string;
  /** Hex sha256 of the stored record; also its name, `shared/<sha256>`. */
  readonly sha256: string;
  /** Size of the stored record in bytes. */
  readonly size: number;

  /** Used by {@linkcode shareValue}. */
  constructor(storage: string, sha256: string, size: number) {
    this.storage = storage;
    this.sha256 = sha256;
    this.size = size;
  }

  /** The value, loaded on first use and then kept for the life of the process. */
  get(): Promise<T> {
    let value = loaded.get(this.sha256);
    if (!value) {
      value = loader(this.storage, this.sha256);
      value.catch(() => loaded.delete(this.sha256));
      loaded.set(this.sha256, value);
    }
    return value as Promise<T>;
  }
}

const loaded = new Map<string, Promise<unknown>>();
const storages = new Map<string, Promise<Storage>>();

/** Loads a shared value: from storage by default; a task thread asks its worker instead. */
export type SharedLoader = (storage: string, sha256: string) => Promise<unknown>;

let loader: SharedLoader = (storage, sha256) => loadShared(storage, sha256);

/** Replace how shared values are loaded in this process (or thread). */
export function setSharedLoader(load: SharedLoader): void {
  loader = load;
}

/** Key of a shared value. */
export function sharedKey(sha256: string): string {
  return `shared/${sha256}`;
}

/** Read a shared value's record from storage, not decoded. */
export async function readShared(
  root: string,
  sha256: string,
): Promise<{ encoding: Encoding; payload: Uint8Array }> {
  let storage = storages.get(root);
  if (!storage) {
    storage = openStorage(root);
    storages.set(root, storage);
  }
  const { header, payload } = await readRawRecord(
    await (await storage).get(sharedKey(sha256)),
    `shared value ${sha256}`,
  );
  return { encoding: header.encoding, payload };
}

async function loadShared(root: string, sha256: string): Promise<unknown> {
  const { encoding, payload } = await readShared(root, sha256);
  return decodeValue(encoding, payload);
}

/**
 * Store a value once and return a reference to it. Storing the same value
 * again writes nothing.
 *
 * @throws {TypeError} The value cannot be serialized.
 */
export async function shareValue<T>(storage: Storage, value: T): Promise<Shared<T>> {
  const chunks = encodeRecord({ kind: "shared" }, encodeValue(value, "the shared value"));
  const hash = createHash("sha256");
  for (const chunk of chunks) hash.update(chunk);
  const sha256 = hash.digest("hex");
  const size = chunks.reduce((n, c) => n + c.length, 0);
  if (!(await storage.stat(sharedKey(sha256)))) {
    await storage.put(sharedKey(sha256), recordBody(chunks), { ifAbsent: true });
  }
  return new Shared<T>(storage.url, sha256, size);
}

/**
 * Give references that crossed storage (plain objects now) their methods
 * back, in place. Looks through arrays, plain objects, Maps and Sets up to
 * a few levels deep; typed arrays are skipped.
 */
export function reviveShared<T>(value: T, depth = 0): T {
  if (depth > 6 || value === null || typeof value !== "object" || ArrayBuffer.isView(value)) {
    return value;
  }
  const record = value as Record<string, unknown>;
  if (
    record.kind === KIND && typeof record.sha256 === "string" && typeof record.storage === "string"
  ) {
    Object.setPrototypeOf(value, Shared.prototype);
    return value;
  }
  if (Array.isArray(value) || value instanceof Set) {
    for (const item of value) reviveShared(item, depth + 1);
  } else if (value instanceof Map) {
    for (const item of value.values()) reviveShared(item, depth + 1);
  } else if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const item of Object.values(record)) reviveShared(item, depth + 1);
  }
  return value;
}
