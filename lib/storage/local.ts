/**
 * Storage in a local directory. Objects are files; a write goes to a hidden
 * temporary file in the same directory and is renamed (or hard-linked, for
 * `ifAbsent`) into place, so a crashed writer never leaves half an object.
 * Metadata calls and small objects use synchronous calls (see `SMALL`).
 *
 * @module
 */

import { dirname, join, resolve } from "node:path";
import { fileURLToPath as fromFileUrl, pathToFileURL as toFileUrl } from "node:url";
import { errorMessage, NotFoundError, StorageError } from "../errors.ts";
import {
  type Body,
  bytesStream,
  checkKey,
  type ObjectInfo,
  type PutOptions,
  type Storage,
} from "./storage.ts";

const TEMP_MARK = ".kftmp-";

/**
 * Objects up to this size are read and written in one synchronous call:
 * on a local disk that takes microseconds, several times less than the
 * event loop's round trip for an asynchronous call, which dominates the
 * cost of a small task. Larger objects are streamed.
 */
const SMALL = 1024 * 1024;

/** Directories known to exist, so a write need not ask (bounded). */
const knownDirs = new Set<string>();

/** Write the body to a new file, creating its directory when missing. */
async function writeNew(path: string, body: Body): Promise<void> {
  const dir = dirname(path);
  if (!knownDirs.has(dir)) {
    Deno.mkdirSync(dir, { recursive: true });
    if (knownDirs.size > 10_000) knownDirs.clear();
    knownDirs.add(dir);
  }
  for (let attempt = 1;; attempt++) {
    try {
      if (body instanceof Uint8Array && body.length <= SMALL) {
        Deno.writeFileSync(path, body, { createNew: true });
      } else {
        const file = await Deno.open(path, { write: true, createNew: true });
        try {
          for await (const chunk of body instanceof Uint8Array ? [body] : body) {
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
      Deno.mkdirSync(dir, { recursive: true });
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
    const path = this.pathOf(key);
    try {
      // Objects are replaced by rename, never changed: the size cannot change under us.
      if (Deno.statSync(path).size <= SMALL) return bytesStream(Deno.readFileSync(path));
      return (await Deno.open(path, { read: true })).readable;
    } catch (error) {
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
        Deno.renameSync(temp, path);
        return true;
      }
      try {
        Deno.linkSync(temp, path);
        return true;
      } catch (error) {
        if (error instanceof Deno.errors.AlreadyExists) return false;
        throw error;
      } finally {
        removeQuietly(temp);
      }
    } catch (error) {
      removeQuietly(temp);
      throw this.#wrap(error, key, "write");
    }
  }

  stat(key: string): Promise<ObjectInfo | undefined> {
    return promised(() => {
      try {
        const info = Deno.statSync(this.pathOf(key));
        if (!info.isFile) return undefined;
        return { key, size: info.size, updated: info.mtime ?? new Date(0) };
      } catch (error) {
        if (error instanceof Deno.errors.NotFound) return undefined;
        throw this.#wrap(error, key, "read");
      }
    });
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    // Walk from the deepest directory the prefix names, then filter by the rest.
    const cut = prefix.lastIndexOf("/");
    const base = cut < 0 ? "" : prefix.slice(0, cut);
    if (base !== "") checkKey(base);
    yield* this.#walk(base, prefix);
  }

  async *#walk(dir: string, prefix: string): AsyncIterable<ObjectInfo> {
    let entries: Deno.DirEntry[];
    try {
      entries = [...Deno.readDirSync(join(this.root, dir))];
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

  delete(key: string): Promise<void> {
    return promised(() => {
      try {
        Deno.removeSync(this.pathOf(key));
      } catch (error) {
        if (error instanceof Deno.errors.NotFound) return;
        throw this.#wrap(error, key, "delete");
      }
      // Remove directories the delete left empty, up to the root.
      for (let dir = dirname(this.pathOf(key)); dir.length > this.root.length; dir = dirname(dir)) {
        try {
          Deno.removeSync(dir);
        } catch {
          break;
        }
      }
    });
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
      `Cannot ${action} '${url}': ${errorMessage(error)}`,
      url,
      { cause: error },
    );
  }
}

function removeQuietly(path: string): void {
  try {
    Deno.removeSync(path);
  } catch { /* already gone */ }
}

/** A synchronous call as a promise: what it throws becomes a rejection. */
function promised<T>(call: () => T): Promise<T> {
  try {
    return Promise.resolve(call());
  } catch (error) {
    return Promise.reject(error);
  }
}
