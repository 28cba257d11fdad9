/**
 * JSON objects in storage (manifest, status, summaries, run maps, leases):
 * readable as they are, and carrying a checksum, `"checksum":
 * "crc32c:<hex>"`, over their text without it. A read checks it, so a
 * truncated or hand-edited object is refused as a
 * {@linkcode CorruptObjectError} that names it; objects written before
 * checksums existed (no `checksum` field) are still read.
 *
 * @module
 */

import { crc32cHex } from "../crc32c.ts";
import { CorruptObjectError } from "../errors.ts";
import type { PutOptions, Storage } from "../storage/storage.ts";
import { readBytes } from "../storage/storage.ts";

const encoder = new TextEncoder();
const PREFIX = "crc32c:";

function text(value: object): string {
  return JSON.stringify(value, null, 2);
}

/**
 * The object's text with its checksum, as it is stored: the checksum is
 * added as the last field of the text it was computed over (no second
 * serialization of a large status page).
 */
export function encodeJson(value: object): Uint8Array {
  const { checksum: _, ...rest } = value as Record<string, unknown>;
  const body = text(rest);
  const checksum = JSON.stringify(PREFIX + crc32cHex(encoder.encode(body)));
  const last = body.lastIndexOf("}");
  const joined = body === "{}"
    ? `{\n  "checksum": ${checksum}\n}`
    : `${body.slice(0, last).trimEnd()},\n  "checksum": ${checksum}\n}`;
  return encoder.encode(joined + "\n");
}

/**
 * Parse stored JSON and check its checksum.
 *
 * @param bytes The stored bytes.
 * @param what Names the object in errors, e.g. `manifest (gs://b/jobs/k/manifest.json)`.
 * @throws {CorruptObjectError} It is not JSON, not an object, or its checksum does not match.
 */
export function decodeJson<T>(bytes: Uint8Array, what: string): T {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new CorruptObjectError(what, "it is not valid JSON; it was truncated or edited");
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new CorruptObjectError(what, "it is not a JSON object; it was edited");
  }
  const { checksum, ...rest } = value as Record<string, unknown>;
  if (checksum !== undefined) {
    const expected = PREFIX + crc32cHex(encoder.encode(text(rest)));
    if (checksum !== expected) {
      throw new CorruptObjectError(
        what,
        "its checksum does not match its contents; it was edited or damaged",
      );
    }
  }
  return rest as T;
}

/** The name of an object in errors: what it is and its URL. */
export function objectName(storage: Storage, key: string, what: string): string {
  return `${what} (${storage.url}${key})`;
}

/**
 * Read a JSON object and check its checksum.
 *
 * @throws {NotFoundError} There is no such object.
 * @throws {CorruptObjectError} It is damaged.
 */
export async function readJson<T>(storage: Storage, key: string, what = "object"): Promise<T> {
  return decodeJson<T>(await readBytes(storage, key), objectName(storage, key, what));
}

/** Write an object as pretty JSON with its checksum. */
export async function writeJson(
  storage: Storage,
  key: string,
  value: object,
  options?: PutOptions,
): Promise<boolean> {
  return await storage.put(key, encodeJson(value), {
    contentType: "application/json",
    ...options,
  });
}
