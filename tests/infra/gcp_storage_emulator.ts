/**
 * A second GCS emulator, to cross-check the first (fake-gcs-server):
 * gcp-storage-emulator from PyPI, at a pinned version, installed with pip
 * into a cached virtual environment and run on a free loopback port.
 *
 * ```ts
 * await using emulator = await startGcpStorageEmulator();
 * await emulator.createBucket("test");
 * ```
 *
 * Where it departs from GCS, as measured here (GCS behaves as documented in
 * "Perform resumable uploads",
 * https://cloud.google.com/storage/docs/performing-resumable-uploads, and
 * "Request preconditions", https://cloud.google.com/storage/docs/request-preconditions):
 * - A status query of a session that has no bytes yet answers `308` with
 *   `Range: bytes=0-0` (one byte stored); GCS sends no `Range` header then.
 *   An upload whose first chunk never arrived therefore goes on at byte 1,
 *   and the emulator refuses that chunk (400).
 * - A status query after the upload completed answers 404; GCS answers 200
 *   with the object's metadata.
 * - A chunk that does not start at the stored offset is refused with 400;
 *   GCS ignores the bytes it already has.
 * - Preconditions (`ifGenerationMatch`) are ignored, and so is the
 *   `generation` of a download: it always serves the live object.
 * - One request at a time (Python's single-threaded `HTTPServer`).
 *
 * Otherwise its resumable uploads follow the documentation: a status query
 * answers 308 with the bytes stored, and a session cut part way resumes.
 *
 * @module
 */
// deno-lint-ignore-file no-console

import { join } from "node:path";
import { type Emulator, startEmulatorProcess } from "./emulator_process.ts";

/** The pinned gcp-storage-emulator version (PyPI). */
export const GCP_STORAGE_EMULATOR_VERSION = "2026.7.19";
const PACKAGE = "gcp-storage-emulator";

/** The directory of the cached virtual environment of the pinned version. */
export function gcpStorageEmulatorDir(): string {
  const base = Deno.env.get("XDG_CACHE_HOME") ||
    join(Deno.env.get("HOME") ?? Deno.cwd(), ".cache");
  return join(base, "kubeface", "gcp-storage-emulator", GCP_STORAGE_EMULATOR_VERSION);
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

async function run(command: string, args: string[], what: string): Promise<void> {
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command(command, { args, stdout: "piped", stderr: "piped" }).output();
  } catch (error) {
    throw new Error(
      `Cannot install ${PACKAGE}: '${command}' could not be run (${error}); install Python 3.9 or later with the venv module`,
      { cause: error },
    );
  }
  if (!output.success) {
    const text = new TextDecoder().decode(output.stderr).trim().split("\n").slice(-20).join("\n");
    throw new Error(`Cannot install ${PACKAGE}: ${what} failed:\n${text}`);
  }
}

let installing: Promise<string> | undefined;

/**
 * Return the Python of the cached virtual environment, creating it with
 * `python3 -m venv` and `pip install gcp-storage-emulator==VERSION` when it
 * is missing. The environment is made in a temporary directory next to its
 * place and renamed into place when complete (it is run as
 * `python -m gcp_storage_emulator`, which does not mind the move), so an
 * interrupted install never looks cached.
 *
 * @throws {Error} Python or pip failed; the message has their output.
 */
export function ensureGcpStorageEmulator(): Promise<string> {
  installing ??= install().catch((error) => {
    installing = undefined;
    throw error;
  });
  return installing;
}

async function install(): Promise<string> {
  const dir = gcpStorageEmulatorDir();
  const python = join(dir, "bin", "python");
  if (await isFile(join(dir, "installed"))) return python;
  const parent = join(dir, "..");
  await Deno.mkdir(parent, { recursive: true });
  const temp = await Deno.makeTempDir({ dir: parent, prefix: ".install-" });
  try {
    const started = performance.now();
    console.error(`installing ${PACKAGE}==${GCP_STORAGE_EMULATOR_VERSION} into ${dir}`);
    await run("python3", ["-m", "venv", temp], "python3 -m venv");
    await run(join(temp, "bin", "python"), [
      "-m",
      "pip",
      "install",
      "--quiet",
      "--disable-pip-version-check",
      `${PACKAGE}==${GCP_STORAGE_EMULATOR_VERSION}`,
    ], `pip install ${PACKAGE}==${GCP_STORAGE_EMULATOR_VERSION}`);
    await Deno.writeTextFile(join(temp, "installed"), `${GCP_STORAGE_EMULATOR_VERSION}\n`);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    await Deno.rename(temp, dir);
    console.error(`installed ${PACKAGE} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    return python;
  } finally {
    await Deno.remove(temp, { recursive: true }).catch(() => {});
  }
}

/**
 * Start gcp-storage-emulator (in-memory storage) on a free loopback port and
 * wait until it answers.
 */
export async function startGcpStorageEmulator(
  options: { readyTimeout?: number } = {},
): Promise<Emulator> {
  const { readyTimeout = 30_000 } = options;
  const python = await ensureGcpStorageEmulator();
  return await startEmulatorProcess({
    name: `gcp-storage-emulator ${GCP_STORAGE_EMULATOR_VERSION}`,
    command: python,
    args: (port) => [
      "-m",
      "gcp_storage_emulator",
      "start",
      "--host",
      "127.0.0.1",
      "--port",
      String(port),
      "--in-memory",
      "--quiet",
    ],
    healthPath: "/",
    readyTimeout,
    env: { PYTHONUNBUFFERED: "1" },
  });
}

if (import.meta.main) {
  // `deno run -A tests/infra/gcp_storage_emulator.ts` installs it (if needed);
  // with `--serve` it also runs one with a bucket until Ctrl-C.
  console.log(await ensureGcpStorageEmulator());
  if (Deno.args.includes("--serve")) {
    const emulator = await startGcpStorageEmulator();
    await emulator.createBucket("kubeface");
    console.log(`STORAGE_EMULATOR_HOST=${emulator.url} (bucket gs://kubeface); Ctrl-C stops it`);
    await new Promise<void>((resolve) => Deno.addSignalListener("SIGINT", resolve));
    await emulator[Symbol.asyncDispose]();
  }
}
