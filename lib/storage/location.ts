/**
 * Locations of single objects and of prefixes, for commands that take one
 * URL or path (`kubeface cat`, `kubeface cp`): `gs://BUCKET/KEY`, a
 * `file://` URL or a local path. A location ending in `/` (or a local
 * directory) is a prefix.
 *
 * @module
 */

import { basename, dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { openStorage, type Storage } from "./storage.ts";

/** An opened location: a storage and a key (or a key prefix) in it. */
export interface Location {
  storage: Storage;
  /** The object's key; `""` for a whole prefix. */
  key: string;
  /** Whether the location names a prefix rather than one object. */
  prefix: boolean;
  /** The location as given. */
  text: string;
}

/**
 * Open the storage that holds a location.
 *
 * @throws {TypeError} The location is malformed or its scheme unsupported.
 */
export async function openLocation(text: string): Promise<Location> {
  if (text.startsWith("gs://")) {
    const match = /^gs:\/\/([^/]+)\/?(.*)$/.exec(text);
    const rest = match?.[2] ?? "";
    const prefix = rest === "" || rest.endsWith("/");
    const root = prefix ? text : `gs://${match?.[1]}/${rest.slice(0, rest.lastIndexOf("/") + 1)}`;
    return {
      storage: await openStorage(root),
      key: prefix ? "" : rest.slice(rest.lastIndexOf("/") + 1),
      prefix,
      text,
    };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text) && !text.startsWith("file://")) {
    throw new TypeError(
      `Cannot open '${text}': use a local path, a file:// URL or gs://BUCKET/OBJECT`,
    );
  }
  const path = resolve(text.startsWith("file://") ? fileURLToPath(text) : text);
  let isDirectory = text.endsWith("/");
  try {
    isDirectory ||= (await Deno.stat(path)).isDirectory;
  } catch {
    // A path that does not exist yet names an object (a copy's destination).
  }
  if (isDirectory) return { storage: await openStorage(path), key: "", prefix: true, text };
  return { storage: await openStorage(dirname(path)), key: basename(path), prefix: false, text };
}
