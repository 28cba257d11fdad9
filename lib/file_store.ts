/**
 * Moving files between a machine and storage as streams, never whole in
 * memory, with their sha256 checked end to end: stored once per job under
 * `jobs/<key>/files/<sha256>`, fetched to a local directory, read back as a
 * {@linkcode StoredFile}.
 *
 * @module
 */

import { dirname, join } from "node:path";
import { CorruptObjectError } from "./errors.ts";
import { FILE_KIND, type FileEntry, fileName } from "./files.ts";
import type { JobLayout } from "./format/layout.ts";
import { MemoryRelease } from "./memory.ts";
import { openStorage, type Storage } from "./storage/storage.ts";

/** A streaming sha256 (node:crypto, loaded only where files are used). */
async function hasher(): Promise<{ update(bytes: Uint8Array): void; hex(): string }> {
  const { createHash } = await import("node:crypto");
  const hash = createHash("sha256");
  return { update: (bytes) => hash.update(bytes), hex: () => hash.digest("hex") };
}

/**
 * Where a local file goes in a job, from its content: its sha256 and size,
 * read as a stream.
 *
 * @throws {Deno.errors.NotFound} The file does not exist.
 */
export async function fileEntry(layout: JobLayout, path: string): Promise<FileEntry> {
  const { sha256, size } = await digestFile(path);
  return { key: layout.file(sha256), sha256, size, name: fileName(path) };
}

/** Upload a local file to its entry's key, unless the job holds that content already. */
export async function putFile(storage: Storage, entry: FileEntry, path: string): Promise<void> {
  const stored = await storage.stat(entry.key);
  if (stored?.size === entry.size) return;
  const file = await Deno.open(path, { read: true });
  await storage.put(entry.key, file.readable.pipeThrough(new MemoryRelease().stream()));
}

/** The hex sha256 and size of a local file, read as a stream. */
async function digestFile(path: string): Promise<{ sha256: string; size: number }> {
  const hash = await hasher();
  let size = 0;
  using file = await Deno.open(path, { read: true });
  for await (const chunk of file.readable) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { sha256: hash.hex(), size };
}

/**
 * Store a local file in a job, once per content: read it to hash it, then
 * stream it up unless the job already holds that content.
 *
 * @throws {Deno.errors.NotFound} The file does not exist.
 */
export async function storeFile(
  storage: Storage,
  layout: JobLayout,
  path: string,
): Promise<FileEntry> {
  const entry = await fileEntry(layout, path);
  await putFile(storage, entry, path);
  return entry;
}

/**
 * A stream over a stored file that checks its size and sha256 as it ends:
 * a damaged file errors the stream instead of ending it.
 */
async function checkedStream(
  storage: Storage,
  entry: FileEntry,
): Promise<ReadableStream<Uint8Array>> {
  const hash = await hasher();
  let size = 0;
  const what = `file ${entry.name} (${storage.url}${entry.key})`;
  return (await storage.get(entry.key)).pipeThrough(new MemoryRelease().stream()).pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        hash.update(chunk);
        size += chunk.length;
        controller.enqueue(chunk);
      },
      flush() {
        if (size !== entry.size || hash.hex() !== entry.sha256) {
          throw new CorruptObjectError(
            what,
            `its content is not what was stored (${size} bytes, expected ${entry.size}, or another sha256)`,
          );
        }
      },
    }),
  );
}

/**
 * Write a stored file to `path`, checked, atomically (a partial file is
 * never left under that name).
 *
 * @throws {CorruptObjectError} The stored content is damaged.
 */
export async function saveFile(storage: Storage, entry: FileEntry, path: string): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true });
  const partial = `${path}.partial-${crypto.randomUUID().slice(0, 8)}`;
  try {
    const out = await Deno.open(partial, { write: true, create: true, truncate: true });
    await (await checkedStream(storage, entry)).pipeTo(out.writable);
    await Deno.rename(partial, path);
  } catch (error) {
    await Deno.remove(partial).catch(() => {});
    throw error;
  }
}

/**
 * Fetch a job's stored file into `dir` (as `<dir>/<sha256>/<name>`), or
 * use the copy fetched before. Returns its path.
 */
export async function fetchFile(storage: Storage, entry: FileEntry, dir: string): Promise<string> {
  const path = join(dir, entry.sha256, entry.name);
  try {
    if ((await Deno.stat(path)).size === entry.size) return path;
  } catch { /* not fetched yet */ }
  await saveFile(storage, entry, path);
  return path;
}

/**
 * A file a task returned, as the consumer gets it: stored, and read on
 * demand as a stream or into a local file, checked against its sha256.
 *
 * @example Read a result file as a stream
 * ```ts
 * import assert from "node:assert/strict";
 * import { file, map, StoredFile } from "@kubeface/kubeface";
 *
 * const dir = await Deno.makeTempDir();
 * const api = new URL("./lib/task.ts", import.meta.resolve("@kubeface/kubeface"));
 * await Deno.writeTextFile(
 *   `${dir}/gzip.ts`,
 *   `import { file } from "${api}";
 * export async function task(input: { path: string }) {
 *   const gzip = new Deno.Command("gzip", { args: ["--keep", "--no-name", input.path] });
 *   if (!(await gzip.output()).success) throw new Error("gzip failed");
 *   return file(input.path + ".gz");
 * }\n`,
 * );
 * await Deno.writeTextFile(`${dir}/b.txt`, "bravo");
 * const [gz] = await Array.fromAsync(map<unknown, StoredFile>(`${dir}/gzip.ts`, {
 *   storage: `${dir}/store`,
 *   inputs: [file(`${dir}/b.txt`)],
 *   permissions: ["--allow-run=gzip"],
 * }));
 * assert.ok(gz instanceof StoredFile);
 * const bytes = await new Response(await gz.stream()).bytes();
 * assert.equal(bytes.length, gz.size);
 * assert.deepEqual([...bytes.subarray(0, 2)], [0x1f, 0x8b], "gzip's magic number");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class StoredFile implements FileEntry {
  /** Marks the object as a file. */
  readonly kind: "kubeface.file" = FILE_KIND;
  /** Storage key of the content. */
  readonly key: string;
  /** Hex sha256 of the content. */
  readonly sha256: string;
  /** Size in bytes. */
  readonly size: number;
  /** The base name the task gave the file. */
  readonly name: string;
  /** The storage root it is in. */
  readonly storage: string;

  /** A file stored under `entry.key` in the storage at `storage`. */
  constructor(storage: string, entry: FileEntry) {
    this.storage = storage;
    this.key = entry.key;
    this.sha256 = entry.sha256;
    this.size = entry.size;
    this.name = entry.name;
  }

  /** The storage URL of the content, e.g. for `kubeface cp`. */
  get url(): string {
    return this.storage + this.key;
  }

  /**
   * The content as a stream; it errors at its end if the content is damaged.
   *
   * @throws {NotFoundError} The file was deleted (its job cleaned up).
   */
  async stream(): Promise<ReadableStream<Uint8Array>> {
    const storage = await openStorage(this.storage);
    const stream = await checkedStream(storage, this);
    return stream.pipeThrough(
      new TransformStream({ flush: () => storage[Symbol.asyncDispose]() }),
    );
  }

  /**
   * Write the content to a local file, checked; the file appears only once whole.
   *
   * @throws {CorruptObjectError} The stored content is damaged.
   */
  async saveTo(path: string): Promise<void> {
    await using storage = await openStorage(this.storage);
    await saveFile(storage, this, path);
  }
}
