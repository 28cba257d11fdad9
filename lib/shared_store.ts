/**
 * Storing shared values (`shared/<sha256>`, content-addressed) and reading
 * them back; see `shared.ts` for the references tasks get.
 *
 * @module
 */

import {
  decodeValue,
  encodeRecord,
  encodeValue,
  type Encoding,
  readRawRecord,
  recordBody,
} from "./format/records.ts";
import { Shared } from "./shared.ts";
import { openStorage, type Storage } from "./storage/storage.ts";

const storages = new Map<string, Promise<Storage>>();

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

/** Read and decode a shared value. */
export async function loadShared(root: string, sha256: string): Promise<unknown> {
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
  // Loaded here, on the master: node:crypto would add about 10 ms to every worker's start.
  const { createHash } = await import("node:crypto");
  const hash = createHash("sha256");
  for (const chunk of chunks) hash.update(chunk);
  const sha256 = hash.digest("hex");
  const size = chunks.reduce((n, c) => n + c.length, 0);
  if (!(await storage.stat(sharedKey(sha256)))) {
    await storage.put(sharedKey(sha256), recordBody(chunks), { ifAbsent: true });
  }
  return new Shared<T>(storage.url, sha256, size);
}
