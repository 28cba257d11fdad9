/**
 * Talking to a container engine through its command line (`podman` or
 * `docker`): finding it, running its subcommands, checking an image.
 * Shared by the container backend and the image build.
 *
 * @module
 */

import { basename } from "node:path";
import { BackendError } from "../errors.ts";

/** The container command lines kubeface knows, in the order they are looked for. */
export const CONTAINER_CLIS = ["podman", "docker"] as const;

/** What a CLI call printed and how it exited. */
export interface CliOutput {
  code: number;
  stdout: string;
  stderr: string;
}

/** A container CLI, with the flags that go before every subcommand. */
export interface ContainerCli {
  /** Executable name or path, e.g. `"podman"`. */
  command: string;
  /** Global flags, e.g. `["--runtime", "runc"]`. */
  globalArgs: readonly string[];
}

function notFound(command: string): BackendError {
  return new BackendError(
    `Cannot run containers: '${command}' was not found; install podman or docker, or pass --container-cli`,
  );
}

/**
 * Run `command globalArgs… args…` and capture its output.
 *
 * @throws {BackendError} The executable does not exist.
 */
export async function runCli(
  cli: ContainerCli,
  args: readonly string[],
  options: { env?: Record<string, string> } = {},
): Promise<CliOutput> {
  try {
    const output = await new Deno.Command(cli.command, {
      args: [...cli.globalArgs, ...args],
      env: options.env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
    return { code: output.code, stdout: decode(output.stdout), stderr: decode(output.stderr) };
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) throw notFound(cli.command);
    throw error;
  }
}

/** Whether an executable answers `--version`. */
async function answers(command: string): Promise<boolean> {
  try {
    const { success } = await new Deno.Command(command, {
      args: ["--version"],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).output();
    return success;
  } catch {
    return false;
  }
}

/**
 * The CLI to use: `given` if it runs, else the first of
 * {@linkcode CONTAINER_CLIS} that does.
 *
 * @throws {BackendError} It (or, without `given`, every one of them) was not found.
 */
export async function findCli(given?: string): Promise<string> {
  if (given) {
    if (await answers(given)) return given;
    throw notFound(given);
  }
  for (const command of CONTAINER_CLIS) {
    if (await answers(command)) return command;
  }
  throw new BackendError(
    "Cannot run containers: neither 'podman' nor 'docker' was found; install podman or docker, or pass --container-cli",
  );
}

/**
 * Whether an image exists locally.
 *
 * @throws {BackendError} The CLI failed for another reason (e.g. no Docker daemon).
 */
export async function imageExists(cli: ContainerCli, image: string): Promise<boolean> {
  const { code, stderr } = await runCli(cli, ["image", "inspect", "--format", "{{.Id}}", image]);
  if (code === 0) return true;
  if (/no such image|image not known|not found/i.test(stderr)) return false;
  throw failed(cli, "image inspect", stderr);
}

/** Size of a local image in bytes, if the CLI tells. */
export async function imageSize(cli: ContainerCli, image: string): Promise<number | undefined> {
  const { code, stdout } = await runCli(cli, ["image", "inspect", "--format", "{{.Size}}", image]);
  const size = Number(stdout.trim());
  return code === 0 && Number.isFinite(size) ? size : undefined;
}

/**
 * Arguments that remove containers at once, running or not. Podman would
 * first wait 10 s for SIGTERM, which a worker (PID 1 in its container,
 * without a handler) ignores; docker kills at once.
 */
export function forceRemoveArgs(cli: ContainerCli, names: readonly string[]): string[] {
  const podman = basename(cli.command).includes("podman");
  return ["rm", "--force", ...(podman ? ["--time=0"] : []), ...names];
}

/** A `BackendError` for a CLI call that failed, with the end of what it printed. */
export function failed(cli: ContainerCli, what: string, stderr: string): BackendError {
  const text = stderr.trim().split("\n").slice(-5).join("\n") || "no output";
  return new BackendError(`Cannot run containers: '${cli.command} ${what}' failed: ${text}`);
}
