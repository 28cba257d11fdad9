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
import { objectName } from "./format/json.ts";
import { Shared } from "./shared.ts";
import { sha256Hex } from "./sha256.ts";
import { CorruptObjectError } from "./errors.ts";
import { bytesStream, openStorage, readBytes, type Storage } from "./storage/storage.ts";

/** Key of a shared value. */
export function sharedKey(sha256: string): string {
  return `shared/${sha256}`;
}

/**
 * Read a shared value's record from storage, not decoded, and check that
 * it is the value its name says (its sha256).
 *
 * @throws {CorruptObjectError} The record is damaged or another value.
 */
export async function readShared(
  storage: Storage,
  sha256: string,
): Promise<{ encoding: Encoding; payload: Uint8Array }> {
  const key = sharedKey(sha256);
  const what = objectName(storage, key, `shared value ${sha256}`);
  const bytes = await readBytes(storage, key);
  if (await sha256Hex(bytes) !== sha256) {
    throw new CorruptObjectError(what, "its contents do not have the sha256 it is named by");
  }
  const { header, payload } = await readRawRecord(bytesStream(bytes), what);
  return { encoding: header.encoding, payload };
}

/** Read and decode a shared value (outside a worker: on the master, or in a script). */
export async function loadShared(root: string, sha256: string): Promise<unknown> {
  await using storage = await openStorage(root);
  const { encoding, payload } = await readShared(storage, sha256);
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
