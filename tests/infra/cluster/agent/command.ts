/**
 * What a container runs: its argv after `$(VAR)` expansion, with the program resolved on the
 * node. Images are not pulled; only `denoland/deno` means something (its entrypoint is `deno`,
 * run with the local Deno).
 *
 * @module
 */

import type { V1Container } from "@kubernetes/client-node";
import { expand } from "./expand.ts";

/** The container cannot be started (the runtime's `StartError`, exit code 128). */
export class StartError extends Error {
  override name = "StartError";
}

/** Matches `denoland/deno`, `docker.io/denoland/deno:2.9.6`, `denoland/deno@sha256:…`. */
const DENO_IMAGE = /(^|\/)denoland\/deno([:@]|$)/;

/**
 * Resolve the argv of a container.
 *
 * @param container The container spec.
 * @param env Its full environment (for `$(VAR)` and PATH lookups).
 * @param denoPath The local `deno` executable.
 * @returns The absolute program path and its arguments.
 * @throws {StartError} When there is no command or the program is not found.
 */
export function resolveArgv(
  container: V1Container,
  env: Record<string, string>,
  denoPath: string,
): { program: string; args: string[] } {
  const lookup = (name: string) => env[name];
  let command = (container.command ?? []).map((part) => expand(part, lookup));
  const args = (container.args ?? []).map((part) => expand(part, lookup));
  if (command.length === 0) {
    if (!DENO_IMAGE.test(container.image ?? "")) {
      throw new StartError(
        `the node agent cannot know the entrypoint of image "${container.image}"; set the container's command`,
      );
    }
    command = ["deno"];
  }
  const [name = "", ...rest] = [...command, ...args];
  if (name === "") throw new StartError("the container has an empty command");
  const program = name === "deno" ? denoPath : findExecutable(name, env.PATH ?? "");
  return { program, args: rest };
}

function findExecutable(name: string, path: string): string {
  const candidates = name.includes("/")
    ? [name]
    : path.split(":").filter(Boolean).map((dir) => `${dir}/${name}`);
  for (const candidate of candidates) {
    try {
      const info = Deno.statSync(candidate);
      if (info.isFile && info.mode !== null && (info.mode & 0o111) !== 0) return candidate;
    } catch {
      // not here
    }
  }
  throw new StartError(`exec: "${name}": executable file not found in $PATH`);
}
