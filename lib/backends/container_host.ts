/**
 * Defaults of the container backend that depend on this machine: which user
 * a container runs as so it can write the storage, and which `--ulimit`
 * flags let the engine start containers at all.
 *
 * @module
 */

import { basename } from "node:path";
import { BackendError } from "../errors.ts";
import { type ContainerCli, runCli } from "./container_cli.ts";

/** `--ulimit` values used where the engine cannot apply its own defaults. */
export const FALLBACK_ULIMITS: readonly string[] = ["nofile=1024:1024", "nproc=1024:1024"];

/**
 * Flags that make the image's non-root user able to write your storage:
 *
 * - you are root (rootful podman, docker as root): the image's user keeps
 *   its uid and gets the DAC_OVERRIDE capability, so it may write
 *   directories that belong to root (podman gives added capabilities to a
 *   non-root user; docker does not, so there the storage must be writable by
 *   uid 1000);
 * - rootless podman: `--userns=keep-id`, so the container runs as you;
 * - docker: `--user UID:GID`, so the container runs as you.
 */
export function defaultUserArgs(command: string): string[] {
  const uid = Deno.uid();
  const gid = Deno.gid();
  if (uid === null || gid === null) return []; // Windows: Docker Desktop maps files itself
  if (uid === 0) return ["--cap-add=DAC_OVERRIDE"];
  if (basename(command).includes("podman")) return ["--userns=keep-id"];
  return ["--user", `${uid}:${gid}`];
}

const probed = new Map<string, Promise<string[]>>();

/**
 * The `--ulimit` values containers need here: none when a container of
 * `image` starts with the engine's defaults, else
 * {@linkcode FALLBACK_ULIMITS} (podman, as root in some VMs, fails to set
 * its default limits). Found by starting the image once per process.
 *
 * @throws {BackendError} The image does not start either way.
 */
export function defaultUlimits(cli: ContainerCli, image: string): Promise<string[]> {
  const key = JSON.stringify([cli.command, cli.globalArgs, image]);
  let found = probed.get(key);
  if (!found) {
    found = probe(cli, image);
    found.catch(() => probed.delete(key));
    probed.set(key, found);
  }
  return found;
}

async function probe(cli: ContainerCli, image: string): Promise<string[]> {
  const start = (ulimits: readonly string[]) =>
    runCli(cli, [
      ...["run", "--rm", "--pull=never", "--network=none"],
      ...ulimits.flatMap((limit) => ["--ulimit", limit]),
      image,
      "--version",
    ]);
  let result = await start([]);
  if (result.code === 0) return [];
  if (/rlimit/i.test(result.stderr)) {
    result = await start(FALLBACK_ULIMITS);
    if (result.code === 0) return [...FALLBACK_ULIMITS];
  }
  const text = result.stderr.trim().split("\n").slice(-3).join("\n") || "no output";
  throw new BackendError(
    `Cannot run containers: '${cli.command} run ${image}' failed: ${text}; check that ${cli.command} can run containers here (with podman on cgroups v1, install runc and set runtime = "runc" in containers.conf)`,
  );
}
