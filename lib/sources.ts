/**
 * kubeface's own sources, which workers are made of: where the checkout or
 * installation the master runs from is, its worker files, and a hash of
 * them that names what is built from them (the worker image, the bundled
 * runtime of stock-image pods).
 *
 * @module
 */

import { createHash } from "node:crypto";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = new URL("../", import.meta.url);

/** The kubeface checkout or installation, as a directory; `undefined` when it is not local files. */
export function projectRoot(): string | undefined {
  return ROOT.protocol === "file:" ? fileURLToPath(ROOT) : undefined;
}

/**
 * The files a worker is made of, relative to the project root, sorted:
 * `worker.ts`, `deno.json`, `deno.lock` (when there is one) and every file
 * under `lib/` whose name does not start with a dot.
 *
 * @throws {Deno.errors.NotFound} The project root has no `worker.ts` or `lib/`.
 */
export function workerSourceFiles(root: string): string[] {
  const files = ["worker.ts", "deno.json"];
  try {
    Deno.statSync(join(root, "deno.lock"));
    files.push("deno.lock");
  } catch { /* no lock file */ }
  const walk = (dir: string) => {
    for (const entry of Deno.readDirSync(dir)) {
      if (entry.name.startsWith(".")) continue; // editor and OS droppings
      const path = join(dir, entry.name);
      if (entry.isDirectory) walk(path);
      else if (entry.isFile) files.push(relative(root, path));
    }
  };
  walk(join(root, "lib"));
  Deno.statSync(join(root, "worker.ts"));
  return files.sort();
}

/**
 * The hex sha256 of `salt` and the path and bytes of every file of
 * {@linkcode workerSourceFiles}.
 */
export function sourcesHash(root: string, salt = ""): string {
  const hash = createHash("sha256").update(salt);
  for (const file of workerSourceFiles(root)) {
    hash.update(`${file}\0`).update(Deno.readFileSync(join(root, file))).update("\0");
  }
  return hash.digest("hex");
}
