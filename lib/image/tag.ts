/**
 * The worker image's name: `kubeface-worker:<version>-<hash>`, where the
 * hash covers everything the image is built from (the Dockerfile, the
 * worker's sources, `deno.json`, `deno.lock` and the Deno version). The
 * container backend runs this tag by default, so a worker always matches
 * the master's code; the build is skipped when the tag already exists.
 *
 * @module
 */

import { join } from "node:path";
import { projectRoot, sourcesHash } from "../sources.ts";

/** Repository name of the worker image. */
export const IMAGE_REPOSITORY = "kubeface-worker";

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
 * every worker source file (the Dockerfile and build script are among them,
 * under `lib/image/`).
 */
export function imageInputsHash(root: string, denoVersion: string = Deno.version.deno): string {
  return sourcesHash(root, `deno ${denoVersion}\n`);
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
