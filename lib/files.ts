/**
 * Files as inputs and results, streamed through storage and never held in
 * memory. `file(path)` marks a local file: in the master's inputs it is
 * uploaded and the task gets a local copy in its scratch directory (an
 * {@linkcode InputFile}); returned by a task, a file it wrote in its scratch
 * directory is uploaded and the consumer gets a {@linkcode StoredFile}.
 *
 * In a stored record, a file is a small object `{ kind, slot, name, size }`
 * and the record's header lists where each slot is stored
 * ({@linkcode FileEntry}). This module holds the references and no storage
 * code, so a task thread can load it cheaply.
 *
 * @module
 */

import { isKind, replaceRefs } from "./refs.ts";

/** The mark of a file reference. */
export const FILE_KIND = "kubeface.file" as const;

/** Where one file of a record is stored: an entry of the header's `files`. */
export interface FileEntry {
  /** Storage key, `jobs/<key>/files/<sha256>`: a file's content is stored once per job. */
  key: string;
  /** Hex sha256 of the content, checked when it is read. */
  sha256: string;
  /** Size in bytes. */
  size: number;
  /** The file's base name. */
  name: string;
}

/** A local file to map over, or to return from a task: made by {@linkcode file}. */
export class FileRef {
  /** Marks the object as a file reference after it crossed storage. */
  readonly kind: "kubeface.file" = FILE_KIND;
  /** Absolute path of the file on this machine. */
  readonly path: string;

  /** Use {@linkcode file}. */
  constructor(path: string) {
    this.path = path;
  }
}

/**
 * Mark a local file as an input, or as a task's result. An input file is
 * streamed to storage (once per content) and the task gets a verified local
 * copy; a file a task returns (one it wrote in its scratch directory) is
 * streamed to storage and the consumer gets a {@linkcode StoredFile}.
 *
 * @param path Path (absolute, or relative to the working directory) or `file:` URL.
 * @returns A reference to put in inputs or return from a task.
 * @throws {TypeError} The path is empty or not a local path.
 *
 * @example Compress files with gzip, one task per file
 * ```ts
 * import assert from "node:assert/strict";
 * import { file, map, type StoredFile } from "@kubeface/kubeface";
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
 * await Deno.writeTextFile(`${dir}/a.txt`, "hello ".repeat(1000));
 * const run = map<unknown, StoredFile>(`${dir}/gzip.ts`, {
 *   storage: `${dir}/store`,
 *   inputs: [file(`${dir}/a.txt`)],
 *   permissions: ["--allow-run=gzip"],
 * });
 * const [compressed] = await Array.fromAsync(run);
 * assert.equal(compressed!.name, "a.txt.gz");
 * assert.ok(compressed!.size < 100);
 * await compressed!.saveTo(`${dir}/a.txt.gz`);
 * assert.equal((await Deno.stat(`${dir}/a.txt.gz`)).size, compressed!.size);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function file(path: string | URL): FileRef {
  const local = path instanceof URL ? path : /^file:/i.test(path) ? new URL(path) : path;
  if (local instanceof URL && local.protocol !== "file:") {
    throw new TypeError(`Cannot use '${local.href}' as a file: give a local path or a file: URL`);
  }
  const text = local instanceof URL ? decodeURIComponent(local.pathname) : local;
  if (!text) throw new TypeError("Cannot use an empty path as a file: give the file's path");
  return new FileRef(text);
}

/** An input file as a task gets it: a verified local copy in its scratch directory. */
export interface InputFile {
  /** Marks the object as a file. */
  readonly kind: "kubeface.file";
  /** The file's base name, as given. */
  readonly name: string;
  /** Where the copy is; readable by the task without any permission. */
  readonly path: string;
  /** Size in bytes. */
  readonly size: number;
}

/** The record form of a file: its slot in the header's `files`. */
export interface FileSlot {
  kind: "kubeface.file";
  slot: number;
  name: string;
  size: number;
}

/** Whether a value is a file marked by {@linkcode file} (a path not stored yet). */
export function isLocalRef(value: unknown): value is { kind: string; path: string } {
  return isKind(value, FILE_KIND) && typeof value.path === "string" && !("slot" in value);
}

/**
 * Replace the local file references in a value (in place) with slots;
 * `onFile` gets each path and says its slot, name and size.
 */
export function toSlots(
  value: unknown,
  onFile: (path: string) => { slot: number; name: string; size: number },
): unknown {
  return replaceRefs(value, FILE_KIND, (ref) => {
    if (!isLocalRef(ref)) return ref;
    return { kind: FILE_KIND, ...onFile(ref.path) } satisfies FileSlot;
  });
}

/** Replace the slots of a value (in place) with what `revive` makes of each. */
export function fromSlots(value: unknown, revive: (slot: FileSlot) => unknown): unknown {
  return replaceRefs(value, FILE_KIND, (ref) => {
    const slot = ref as unknown as FileSlot;
    return typeof slot.slot === "number" ? revive(slot) : ref;
  });
}

/** An input file at `path`, for the slot of an input. */
export function inputFile(slot: FileSlot, path: string): InputFile {
  return { kind: FILE_KIND, name: slot.name, path, size: slot.size };
}

/** The base name of a path, as a file's name. */
export function fileName(path: string): string {
  return path.replace(/\/+$/, "").split("/").at(-1) ?? path;
}
