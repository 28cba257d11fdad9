/**
 * How values travel through storage.
 *
 * A record is `KF2\n`, a little-endian u32 header length, the CRC32C of the
 * header (u32), a JSON header and a payload; the header holds the payload's
 * length and CRC32C, and nothing may follow the payload. Every read checks
 * both checksums, so a truncated, flipped or edited record is refused as a
 * {@linkcode CorruptObjectError} rather than decoded. Records of format 1
 * (`KF1\n`, no checksums, written before kubeface 0.2) are still read. The payload of a value is V8's structured-clone serialization
 * (`node:v8`), which keeps typed arrays, Map, Set, Date, BigInt and errors;
 * a top-level `Uint8Array` is stored as its raw bytes. Readers take the
 * header alone (status listings) or read the payload into one buffer of the
 * size the header gives, so a value is held in memory about once.
 *
 * @module
 */

import v8 from "node:v8";
import { concatBytes } from "../bytes.ts";
import { crc32c, crc32cHex } from "../crc32c.ts";
import { CorruptObjectError, errorMessage } from "../errors.ts";
import { heldBytes } from "../storage/storage.ts";

const MAGIC = new TextEncoder().encode("KF2\n");
const MAGIC_V1 = new TextEncoder().encode("KF1\n");

/** How a payload is encoded. */
export type Encoding = "v8" | "bytes" | "none";

/** Fields every record header has. */
export interface RecordHeader {
  /** Payload encoding. */
  encoding: Encoding;
  /** Payload length in bytes. */
  size: number;
  /** CRC32C of the payload, eight hex digits (absent in format 1 records). */
  crc32c?: string;
}

/** A serialized value. */
export interface EncodedValue {
  encoding: Encoding;
  bytes: Uint8Array;
}

/**
 * Serialize a value. A `Uint8Array` (not a subclass view of other typed
 * arrays) is kept as is; everything else goes through `v8.serialize`.
 *
 * @throws {TypeError} The value holds something structured clone cannot copy
 * (a function, a symbol, a WeakMap, …). `what` names the value in the message.
 */
export function encodeValue(value: unknown, what: string): EncodedValue {
  if (value instanceof Uint8Array && value.constructor === Uint8Array) {
    return { encoding: "bytes", bytes: value };
  }
  try {
    return { encoding: "v8", bytes: v8.serialize(value) };
  } catch (error) {
    throw new TypeError(
      `Cannot serialize ${what}: ${
        errorMessage(error)
      }; values must be structured-cloneable (no functions, symbols or class instances that need their methods)`,
      { cause: error },
    );
  }
}

/** Turn a payload back into a value. */
export function decodeValue(encoding: Encoding, bytes: Uint8Array): unknown {
  switch (encoding) {
    case "bytes":
      return bytes;
    case "v8":
      return v8.deserialize(bytes);
    case "none":
      return undefined;
  }
}

/** The chunks of a record: prefix with the header, then the payload. */
export function encodeRecord<H extends object>(
  header: H,
  value?: EncodedValue,
): Uint8Array[] {
  const payload = value?.bytes ?? new Uint8Array(0);
  const full = {
    ...header,
    encoding: value?.encoding ?? "none",
    size: payload.length,
    crc32c: crc32cHex(payload),
  };
  const json = new TextEncoder().encode(JSON.stringify(full));
  const prefix = new Uint8Array(MAGIC.length + 8 + json.length);
  const view = new DataView(prefix.buffer);
  prefix.set(MAGIC, 0);
  view.setUint32(MAGIC.length, json.length, true);
  view.setUint32(MAGIC.length + 4, crc32c(json), true);
  prefix.set(json, MAGIC.length + 8);
  return payload.length > 0 ? [prefix, payload] : [prefix];
}

/** Records up to this size are written as one buffer. */
const ONE_BUFFER = 1024 * 1024;

/**
 * The body of a record for `Storage.put`: one buffer when small (one write),
 * else a stream over its chunks (the payload is not copied).
 */
export function recordBody(chunks: Uint8Array[]): Uint8Array | ReadableStream<Uint8Array> {
  const size = chunks.reduce((n, c) => n + c.length, 0);
  if (size <= ONE_BUFFER) return concatBytes(chunks);
  let i = 0;
  return new ReadableStream({
    pull(controller) {
      const chunk = chunks[i++];
      if (chunk) controller.enqueue(chunk);
      else controller.close();
    },
  });
}

/**
 * Reads exact byte counts from a stream. A byte stream (a local file) is
 * read straight into the destination buffer, leaving no garbage chunks; the
 * bytes behind a storage's in-memory stream (`bytesStream`) are taken as they are.
 */
class ExactReader {
  #byob: ReadableStreamBYOBReader | undefined;
  #reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  #pending: Uint8Array = new Uint8Array(0);

  constructor(stream: ReadableStream<Uint8Array>) {
    const bytes = heldBytes(stream);
    if (bytes) {
      this.#pending = bytes;
      return;
    }
    try {
      this.#byob = stream.getReader({ mode: "byob" });
    } catch {
      this.#reader = stream.getReader();
    }
  }

  /** Read exactly `length` bytes, or throw if the stream ends first. */
  async read(length: number, what: string): Promise<Uint8Array> {
    const truncated = (filled: number) =>
      new CorruptObjectError(
        what,
        `the record ends ${filled} bytes into a part of ${length}; it is truncated or not a kubeface record`,
      );
    if (this.#pending.length >= length) {
      // In memory already (a small object, or what a read left over).
      const bytes = this.#pending.slice(0, length);
      this.#pending = this.#pending.subarray(length);
      return bytes;
    }
    if (this.#byob) {
      let buffer = new ArrayBuffer(length);
      let filled = 0;
      while (filled < length) {
        const { done, value } = await this.#byob.read(
          new Uint8Array(buffer, filled, length - filled),
        );
        if (done || !value) throw truncated(filled);
        buffer = value.buffer as ArrayBuffer;
        filled += value.length;
      }
      return new Uint8Array(buffer, 0, length);
    }
    const target = new Uint8Array(length);
    let filled = 0;
    while (filled < length) {
      if (this.#pending.length === 0) {
        if (!this.#reader) throw truncated(filled);
        const { done, value } = await this.#reader.read();
        if (done) throw truncated(filled);
        this.#pending = value;
      }
      const n = Math.min(length - filled, this.#pending.length);
      target.set(this.#pending.subarray(0, n), filled);
      this.#pending = this.#pending.subarray(n);
      filled += n;
    }
    return target;
  }

  /** Whether the stream has nothing left (reads at most one byte). */
  async atEnd(): Promise<boolean> {
    if (this.#pending.length > 0) return false;
    if (this.#byob) {
      const { done, value } = await this.#byob.read(new Uint8Array(1));
      return done || !value || value.length === 0;
    }
    if (!this.#reader) return true;
    for (;;) {
      const { done, value } = await this.#reader.read();
      if (done) return true;
      if (value.length > 0) return false;
    }
  }

  async cancel(): Promise<void> {
    await (this.#byob ?? this.#reader)?.cancel().catch(() => {});
  }
}

async function readHeaderFrom<H extends RecordHeader>(
  reader: ExactReader,
  what: string,
): Promise<H> {
  const magic = await reader.read(MAGIC.length, what);
  const version = startsWith(magic, MAGIC) ? 2 : startsWith(magic, MAGIC_V1) ? 1 : 0;
  if (version === 0) {
    throw new CorruptObjectError(what, "it is not a kubeface record (bad magic bytes)");
  }
  const lengths = await reader.read(version === 2 ? 8 : 4, what);
  const view = new DataView(lengths.buffer, lengths.byteOffset, lengths.byteLength);
  const length = view.getUint32(0, true);
  if (length > MAX_HEADER) {
    throw new CorruptObjectError(what, `its header claims ${length} bytes; the record is damaged`);
  }
  const json = await reader.read(length, what);
  if (version === 2 && crc32c(json) !== view.getUint32(4, true)) {
    throw new CorruptObjectError(
      what,
      "its header's checksum does not match; the record was changed or damaged",
    );
  }
  try {
    return JSON.parse(new TextDecoder().decode(json)) as H;
  } catch {
    throw new CorruptObjectError(what, "its header is not JSON; the record is damaged");
  }
}

/** Headers are small JSON objects; a larger length means a damaged record. */
const MAX_HEADER = 1024 * 1024;

function startsWith(bytes: Uint8Array, prefix: Uint8Array): boolean {
  return prefix.every((byte, i) => bytes[i] === byte);
}

/** Whether a stream starts like a record; reads a few bytes and stops. */
export async function isRecord(stream: ReadableStream<Uint8Array>): Promise<boolean> {
  const reader = new ExactReader(stream);
  try {
    const head = await reader.read(MAGIC.length, "a record").catch(() => undefined);
    return head !== undefined && (startsWith(head, MAGIC) || startsWith(head, MAGIC_V1));
  } finally {
    await reader.cancel();
  }
}

/** Read only the header of a record and stop reading. */
export async function readHeader<H extends RecordHeader>(
  stream: ReadableStream<Uint8Array>,
  what: string,
): Promise<H> {
  const reader = new ExactReader(stream);
  try {
    return await readHeaderFrom<H>(reader, what);
  } finally {
    await reader.cancel();
  }
}

/** Read a whole record: its header and its payload, not decoded. */
export async function readRawRecord<H extends RecordHeader>(
  stream: ReadableStream<Uint8Array>,
  what: string,
): Promise<{ header: H; payload: Uint8Array }> {
  const reader = new ExactReader(stream);
  try {
    const header = await readHeaderFrom<H>(reader, what);
    if (!(Number.isSafeInteger(header.size) && header.size >= 0)) {
      throw new CorruptObjectError(what, `its header gives no valid size; the record is damaged`);
    }
    const payload = await reader.read(header.size, what);
    if (header.crc32c !== undefined) {
      if (crc32cHex(payload) !== header.crc32c) {
        throw new CorruptObjectError(
          what,
          "its checksum does not match its contents; the record was changed or damaged",
        );
      }
      if (!(await reader.atEnd())) {
        throw new CorruptObjectError(what, "bytes follow the end of the record; it was changed");
      }
    }
    return { header, payload };
  } finally {
    await reader.cancel();
  }
}

/** Read a whole record: its header and its decoded value. */
export async function readRecord<H extends RecordHeader>(
  stream: ReadableStream<Uint8Array>,
  what: string,
): Promise<{ header: H; value: unknown }> {
  const { header, payload } = await readRawRecord<H>(stream, what);
  try {
    return { header, value: decodeValue(header.encoding, payload) };
  } catch (error) {
    throw new CorruptObjectError(what, `its value cannot be decoded (${errorMessage(error)})`);
  }
}
