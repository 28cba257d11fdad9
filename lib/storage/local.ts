/**
 * Storage in a local directory. Objects are files; a write goes to a hidden
 * temporary file in the same directory and is renamed (or hard-linked, for
 * `ifAbsent`) into place, so a crashed writer never leaves half an object.
 *
 * @module
 */

import { dirname, join, resolve } from "node:path";
import { fileURLToPath as fromFileUrl, pathToFileURL as toFileUrl } from "node:url";
import { NotFoundError, StorageError } from "../errors.ts";
import { type Body, checkKey, type ObjectInfo, type PutOptions, type Storage } from "./storage.ts";

const TEMP_MARK = ".kftmp-";

/** Objects up to this size are read and written in one call. */
const SMALL = 256 * 1024;

/** Directories known to exist, so a write need not ask (bounded). */
const knownDirs = new Set<string>();

/** Write the body to a new file, creating its directory when missing. */
async function writeNew(path: string, body: Body): Promise<void> {
  const dir = dirname(path);
  if (!knownDirs.has(dir)) {
    await Deno.mkdir(dir, { recursive: true });
    if (knownDirs.size > 10_000) knownDirs.clear();
    knownDirs.add(dir);
  }
  for (let attempt = 1;; attempt++) {
    try {
      if (body instanceof Uint8Array) {
        await Deno.writeFile(path, body, { createNew: true });
      } else {
        const file = await Deno.open(path, { write: true, createNew: true });
        try {
          for await (const chunk of body) {
            let written = 0;
            while (written < chunk.length) written += await file.write(chunk.subarray(written));
          }
        } finally {
          file.close();
        }
      }
      return;
    } catch (error) {
      // A delete may have removed the directory since: make it again.
      if (!(error instanceof Deno.errors.NotFound) || attempt >= 5) throw error;
      await Deno.mkdir(dir, { recursive: true });
    }
  }
}

/** A {@linkcode Storage} rooted at a local directory, created on first write. */
export class LocalStorage implements Storage {
  /** `file://` URL of the root, ending in `/`. */
  readonly url: string;
  /** Absolute path of the root directory. */
  readonly root: string;

  private constructor(root: string) {
    this.root = root;
    this.url = toFileUrl(root).href.replace(/\/?$/, "/");
  }

  /** Open a directory given as a path or a `file://` URL. */
  static open(location: string): LocalStorage {
    const path = location.startsWith("file://") ? fromFileUrl(location) : location;
    if (path.trim() === "") {
      throw new TypeError("Cannot open local storage '': give a directory path");
    }
    return new LocalStorage(resolve(path));
  }

  /** Absolute path of the file that holds `key`. */
  pathOf(key: string): string {
    return join(this.root, checkKey(key));
  }

  async get(key: string): Promise<ReadableStream<Uint8Array>> {
    let file: Deno.FsFile | undefined;
    try {
      file = await Deno.open(this.pathOf(key), { read: true });
      const { size } = await file.stat();
      if (size > SMALL) return file.readable;
      // A small object is read at once: a stream per chunk costs more than the read.
      const bytes = new Uint8Array(size);
      let filled = 0;
      while (filled < size) {
        const n = await file.read(bytes.subarray(filled));
        if (n === null) break;
        filled += n;
      }
      file.close();
      return ReadableStream.from([bytes.subarray(0, filled)]);
    } catch (error) {
      try {
        file?.close();
      } catch { /* closed */ }
      throw this.#wrap(error, key, "read");
    }
  }

  async put(key: string, body: Body, options: PutOptions = {}): Promise<boolean> {
    const path = this.pathOf(key);
    const temp = join(
      dirname(path),
      `.${path.slice(dirname(path).length + 1)}${TEMP_MARK}${crypto.randomUUID().slice(0, 8)}`,
    );
    try {
      await writeNew(temp, body);
      if (!options.ifAbsent) {
        await Deno.rename(temp, path);
        return true;
      }
      try {
        await Deno.link(temp, path);
        return true;
      } catch (error) {
        if (error instanceof Deno.errors.AlreadyExists) return false;
        throw error;
      } finally {
        await Deno.remove(temp).catch(() => {});
      }
    } catch (error) {
      await Deno.remove(temp).catch(() => {});
      throw this.#wrap(error, key, "write");
    }
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    try {
      const info = await Deno.stat(this.pathOf(key));
      if (!info.isFile) return undefined;
      return { key, size: info.size, updated: info.mtime ?? new Date(0) };
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return undefined;
      throw this.#wrap(error, key, "read");
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    // Walk from the deepest directory the prefix names, then filter by the rest.
    const cut = prefix.lastIndexOf("/");
    const base = cut < 0 ? "" : prefix.slice(0, cut);
    if (base !== "") checkKey(base);
    yield* this.#walk(base, prefix);
  }

  async *#walk(dir: string, prefix: string): AsyncIterable<ObjectInfo> {
    const entries: Deno.DirEntry[] = [];
    try {
      for await (const entry of Deno.readDir(join(this.root, dir))) entries.push(entry);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory) {
        return;
      }
      throw this.#wrap(error, dir, "list");
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      if (entry.name.startsWith(".")) continue; // temporary files of writers in flight
      const key = dir === "" ? entry.name : `${dir}/${entry.name}`;
      if (entry.isDirectory) {
        if ((key + "/").startsWith(prefix) || prefix.startsWith(key + "/")) {
          yield* this.#walk(key, prefix);
        }
      } else if (entry.isFile && key.startsWith(prefix)) {
        const info = await this.stat(key);
        if (info) yield info;
      }
    }
  }

  async delete(key: string): Promise<void> {
    try {
      await Deno.remove(this.pathOf(key));
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return;
      throw this.#wrap(error, key, "delete");
    }
    // Remove directories the delete left empty, up to the root.
    for (let dir = dirname(this.pathOf(key)); dir.length > this.root.length; dir = dirname(dir)) {
      try {
        await Deno.remove(dir);
      } catch {
        break;
      }
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {}

  #wrap(error: unknown, key: string, action: string): Error {
    const url = this.url + key;
    if (error instanceof Deno.errors.NotFound && action === "read") {
      return new NotFoundError(url, { cause: error });
    }
    if (error instanceof Deno.errors.PermissionDenied || error instanceof Deno.errors.NotCapable) {
      return new StorageError(
        `Cannot ${action} '${url}': permission denied; check the directory's permissions (and Deno's --allow-read/--allow-write)`,
        url,
        { cause: error },
      );
    }
    if (error instanceof StorageError || error instanceof TypeError) return error;
    return new StorageError(
      `Cannot ${action} '${url}': ${error instanceof Error ? error.message : String(error)}`,
      url,
      { cause: error },
    );
  }
}
