/**
 * Running the `kubeface` command as a user would, and comparing text with
 * stored snapshots.
 *
 * @module
 */

import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { fileURLToPath as fromFileUrl } from "node:url";

const ROOT = fromFileUrl(new URL("../../", import.meta.url));

/** What a command printed and how it exited. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options of {@linkcode kubeface}. */
export interface CliOptions {
  env?: Record<string, string>;
  cwd?: string;
  /** Leave `NO_COLOR` out of the environment (it is set by default). */
  colour?: boolean;
}

/** Run `deno run -A SCRIPT ARGS` (a job file) and capture its output. */
export async function denoRun(
  script: string,
  args: string[],
  options: CliOptions = {},
): Promise<CliResult> {
  const env = { ...Deno.env.toObject(), ...(options.colour ? {} : { NO_COLOR: "1" }) };
  if (options.colour) delete env.NO_COLOR;
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", script, ...args],
    cwd: options.cwd ?? ROOT,
    clearEnv: true,
    env: { ...env, ...options.env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: output.code, stdout: decode(output.stdout), stderr: decode(output.stderr) };
}

/** Run `deno run -A cli.ts ARGS` and capture its output. */
export function kubeface(args: string[], options: CliOptions = {}): Promise<CliResult> {
  return denoRun(join(ROOT, "cli.ts"), args, options);
}

/** The repository root, as a directory path ending in `/`. */
export const REPO_ROOT: string = ROOT;

/**
 * Start `deno run -A cli.ts ARGS` in the background, e.g. to kill or
 * interrupt it; its output is piped.
 */
export function spawnKubeface(args: string[]): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", join(ROOT, "cli.ts"), ...args],
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/**
 * Compare text with `tests/snapshots/NAME`; with `UPDATE_SNAPSHOTS=1`,
 * write it there instead.
 */
export async function assertSnapshot(name: string, actual: string): Promise<void> {
  const path = join(ROOT, "tests", "snapshots", name);
  if (Deno.env.get("UPDATE_SNAPSHOTS") === "1") {
    await Deno.mkdir(dirname(path), { recursive: true });
    await Deno.writeTextFile(path, actual);
    return;
  }
  let expected: string;
  try {
    expected = await Deno.readTextFile(path);
  } catch {
    throw new Error(`no snapshot ${path}; run the test with UPDATE_SNAPSHOTS=1 to write it`);
  }
  assert.equal(
    actual,
    expected,
    `output differs from snapshot ${name} (UPDATE_SNAPSHOTS=1 updates it)`,
  );
}
