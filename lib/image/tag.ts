/**
 * The worker image's name: `kubeface-worker:<version>-<hash>`, where the
 * hash covers everything the image is built from (the Dockerfile, the
 * worker's sources, `deno.json`, `deno.lock` and the Deno version). The
 * container backend runs this tag by default, so a worker always matches
 * the master's code; the build is skipped when the tag already exists.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

/** Repository name of the worker image. */
export const IMAGE_REPOSITORY = "kubeface-worker";

const ROOT = new URL("../../", import.meta.url);

/** The kubeface checkout or installation the image is built from, as a directory. */
export function projectRoot(): string | undefined {
  return ROOT.protocol === "file:" ? fileURLToPath(ROOT) : undefined;
}

/**
 * Files of the project that go into the image's `/app`, relative to the
 * project root, sorted: `worker.ts`, `deno.json`, `deno.lock` (when there is
 * one) and every file under `lib/` whose name does not start with a dot.
 *
 * @throws {Deno.errors.NotFound} The project root has no `worker.ts` or `lib/`.
 */
export function appFiles(root: string): string[] {
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

/** The version in the project's `deno.json`, or `"dev"`. */
function projectVersion(root: string): string {
  try {
    const config = JSON.parse(Deno.readTextFileSync(join(root, "deno.json")));
    return typeof config.version === "string" ? config.version : "dev";
  } catch {
    return "dev";
  }
}

/**
 * The hash of an image's inputs: the Deno version and the path and bytes of
 * every app file (the Dockerfile and build script are among them, under `lib/image/`).
 */
export function imageInputsHash(root: string, denoVersion: string = Deno.version.deno): string {
  const hash = createHash("sha256").update(`deno ${denoVersion}\n`);
  for (const file of appFiles(root)) {
    hash.update(`${file}\0`).update(Deno.readFileSync(join(root, file))).update("\0");
  }
  return hash.digest("hex");
}

/**
 * The default worker image: `kubeface-worker:<version>-<first 12 hex of the
 * inputs hash>`, or `kubeface-worker:<Deno version>` when kubeface does not
 * run from local files (then there is nothing to hash).
 */
export function defaultImage(root: string | undefined = projectRoot()): string {
  if (root === undefined) return `${IMAGE_REPOSITORY}:deno-${Deno.version.deno}`;
  return `${IMAGE_REPOSITORY}:${projectVersion(root)}-${imageInputsHash(root).slice(0, 12)}`;
}
