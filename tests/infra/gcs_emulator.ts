/**
 * A real GCS emulator for tests: fake-gcs-server, built from the Go module
 * proxy at a pinned version, cached, and run on a free loopback port.
 *
 * ```ts
 * await using emulator = await startEmulator();
 * await emulator.createBucket("test");
 * // point the code under test at emulator.url (or STORAGE_EMULATOR_HOST=emulator.url)
 * ```
 *
 * Quirks of fake-gcs-server v1.56.1 worth knowing (real GCS behaves as documented):
 * - The JSON API lives under `/storage/v1` only; `@google-cloud/storage` uses a
 *   `STORAGE_EMULATOR_HOST` value verbatim as its JSON API base URL, so
 *   `lib/storage/gcs.ts` normalises the variable itself.
 * - A resumable upload's status query (an empty PUT with `Content-Range:
 *   bytes *\/*`) completes the object with the bytes received so far (its
 *   `Range` header then off by one) instead of answering 308, also for a
 *   session with no bytes (an empty object); a chunk is appended whatever its
 *   first byte, and its 308 credits the range it declared (issues #2354,
 *   #1362, #1149). So an upload whose chunk request fails cannot resume here:
 *   kubeface finds the object short, deletes it and fails the put; on GCS (and
 *   on gcp-storage-emulator, `gcp_storage_emulator.ts`) it resumes. Fault tests
 *   spare those requests, and `tests/gcs_resumable_test.ts` pins the behaviour.
 * - A status query after the upload completed answers 404 (GCS: 200 with the
 *   object).
 * - `ifGenerationMatch` is honoured on inserts but ignored on deletes.
 * - Resumable uploads are held in memory and every chunk re-hashes the whole
 *   object (CRC32C and MD5), so an N-chunk upload costs O(N²) hashing: use big
 *   chunks for big test objects.
 * - The `Location` of a resumable session is built from the request's `Host`
 *   header, so it names a proxy in front of the emulator when the proxy keeps
 *   `Host` (or rewrites `Location`).
 *
 * @module
 */
// deno-lint-ignore-file no-console

import { join } from "node:path";
import { type Emulator, startEmulatorProcess } from "./emulator_process.ts";

/** The pinned fake-gcs-server version. */
export const EMULATOR_VERSION = "v1.56.1";
const MODULE = "github.com/fsouza/fake-gcs-server";
const BINARY = "fake-gcs-server";

export type { Emulator } from "./emulator_process.ts";
export { freePort } from "./emulator_process.ts";

/** Options of {@linkcode startEmulator}. */
export interface StartEmulatorOptions {
  /**
   * Where objects live: `memory`, or `filesystem` under a temporary directory.
   *
   * @default {"memory"}
   */
  backend?: "memory" | "filesystem";
  /**
   * How long to wait for the emulator to answer its health check, in ms.
   *
   * @default {30000}
   */
  readyTimeout?: number;
}

/** The directory that caches the built binary of the pinned version. */
export function emulatorCacheDir(): string {
  const base = Deno.env.get("XDG_CACHE_HOME") ||
    join(Deno.env.get("HOME") ?? Deno.cwd(), ".cache");
  return join(base, "kubeface", "gcs-emulator", EMULATOR_VERSION);
}

async function exists(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

let building: Promise<string> | undefined;

/**
 * Return the path of the fake-gcs-server binary, building it with
 * `go install MODULE@VERSION` into the cache directory when it is missing.
 * The build goes to a temporary directory first and is renamed into place, so
 * an interrupted build never leaves a broken binary. About a minute on 2 cores.
 *
 * @throws {Error} Go is missing or the build failed; the message has go's output.
 */
export function ensureEmulatorBinary(): Promise<string> {
  building ??= build().catch((error) => {
    building = undefined;
    throw error;
  });
  return building;
}

async function build(): Promise<string> {
  const dir = emulatorCacheDir();
  const binary = join(dir, BINARY);
  if (await exists(binary)) return binary;
  await Deno.mkdir(dir, { recursive: true });
  const temp = await Deno.makeTempDir({ dir, prefix: ".build-" });
  try {
    const started = performance.now();
    console.error(`building ${MODULE}@${EMULATOR_VERSION} into ${dir} (about a minute)`);
    let output: Deno.CommandOutput;
    try {
      output = await new Deno.Command("go", {
        args: ["install", `${MODULE}@${EMULATOR_VERSION}`],
        env: { GOBIN: temp, GOFLAGS: "-buildvcs=false" },
        stdout: "piped",
        stderr: "piped",
      }).output();
    } catch (error) {
      throw new Error(
        `Cannot build the GCS emulator: 'go' could not be run (${error}); install Go 1.26 or later`,
        { cause: error },
      );
    }
    if (!output.success) {
      const text = new TextDecoder().decode(output.stderr).trim().split("\n").slice(-20).join("\n");
      throw new Error(
        `Cannot build the GCS emulator: go install ${MODULE}@${EMULATOR_VERSION} failed:\n${text}`,
      );
    }
    await Deno.rename(join(temp, BINARY), binary);
    console.error(`built ${BINARY} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    return binary;
  } finally {
    await Deno.remove(temp, { recursive: true }).catch(() => {});
  }
}

/**
 * Start fake-gcs-server on a free loopback port (plain HTTP) and wait until
 * it answers. Retries with another port if the chosen one was taken meanwhile.
 */
export async function startEmulator(options: StartEmulatorOptions = {}): Promise<Emulator> {
  const { backend = "memory", readyTimeout = 30_000 } = options;
  const binary = await ensureEmulatorBinary();
  const root = backend === "filesystem" ? await Deno.makeTempDir({ prefix: "kf-gcs-" }) : "";
  return await startEmulatorProcess({
    name: `fake-gcs-server ${EMULATOR_VERSION}`,
    command: binary,
    args: (port) =>
      [
        ["-scheme", "http"],
        ["-host", "127.0.0.1"],
        ["-port", String(port)],
        ["-external-url", `http://127.0.0.1:${port}`],
        ["-backend", backend],
        ["-log-level", "error"],
        ...(root ? [["-filesystem-root", root]] : []),
      ].flat(),
    healthPath: "/_internal/healthcheck",
    readyTimeout,
    cleanUp: root ? () => Deno.remove(root, { recursive: true }).catch(() => {}) : undefined,
  });
}

if (import.meta.main) {
  // `deno run -A tests/infra/gcs_emulator.ts` builds the binary (if needed);
  // with `--serve` it also runs an emulator with a bucket until Ctrl-C.
  const binary = await ensureEmulatorBinary();
  console.log(binary);
  if (Deno.args.includes("--serve")) {
    const emulator = await startEmulator();
    await emulator.createBucket("kubeface");
    console.log(`STORAGE_EMULATOR_HOST=${emulator.url} (bucket gs://kubeface); Ctrl-C stops it`);
    await new Promise<void>((resolve) => Deno.addSignalListener("SIGINT", resolve));
    await emulator[Symbol.asyncDispose]();
  }
}
