/**
 * Running podman for the test node's images: with runc (crun fails on this machine's cgroup
 * layout) and the `--ulimit` values that let it start containers as root here (root lacks
 * CAP_SYS_RESOURCE, so podman's default limits cannot be set).
 *
 * @module
 */

/** Flags before every podman subcommand. */
const GLOBAL = ["--runtime", "runc"];

/** `--ulimit` flags for subcommands that start containers (`build`, `run`). */
export const PODMAN_ULIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"];

/** What a podman call printed and how it exited. */
export interface PodmanOutput {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options of {@link podman}. */
export interface PodmanOptions {
  /** Throw when podman exits non-zero. @default true */
  check?: boolean;
}

/**
 * Run `podman --runtime runc ARGS`.
 *
 * @param args The subcommand and its arguments (`build` and `run` get the ulimits).
 * @param options Whether a non-zero exit throws.
 * @returns The exit code and output.
 * @throws {Error} When podman is missing, or exits non-zero with `check`; the message says how
 *   to install it or quotes its stderr.
 */
export async function podman(args: string[], options: PodmanOptions = {}): Promise<PodmanOutput> {
  const { check = true } = options;
  const [subcommand, ...rest] = args;
  const full = [
    ...GLOBAL,
    subcommand ?? "",
    ...(subcommand === "build" || subcommand === "run" ? PODMAN_ULIMITS : []),
    ...rest,
  ];
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command("podman", {
      args: full,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new Error(
        "Cannot build the test node's images: podman is not installed; run apt-get install -y podman runc",
      );
    }
    throw error;
  }
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  const result = {
    code: output.code,
    stdout: decode(output.stdout),
    stderr: decode(output.stderr),
  };
  if (check && result.code !== 0) {
    throw new Error(`Command failed: podman ${full.join(" ")}\n${result.stderr.trim()}`);
  }
  return result;
}
