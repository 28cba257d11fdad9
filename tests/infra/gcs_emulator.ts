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
 * - A resumable upload's status query (an empty PUT whose Content-Range has an
 *   unknown range and total) finalises
 *   the object with the bytes received so far instead of answering 308, and a
 *   re-sent chunk is appended whatever its offset. So a resumable upload that
 *   loses a chunk request cannot resume on the emulator (it fails and may leave a
 *   truncated object); on GCS it resumes. Fault tests spare those requests.
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

/** The pinned fake-gcs-server version. */
export const EMULATOR_VERSION = "v1.56.1";
const MODULE = "github.com/fsouza/fake-gcs-server";
const BINARY = "fake-gcs-server";

/** A running emulator. Dispose it to stop the process. */
export interface Emulator extends AsyncDisposable {
  /** `127.0.0.1:PORT`, the form other GCS clients take in `STORAGE_EMULATOR_HOST`. */
  readonly host: string;
  /** `http://127.0.0.1:PORT`, the API endpoint. */
  readonly url: string;
  /** Create a bucket (no error if it exists). */
  createBucket(name: string): Promise<void>;
  /** The emulator's output so far (for failure messages). */
  log(): string;
}

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

/** Pick a free loopback TCP port (the kernel's choice, released right away). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/**
 * Start fake-gcs-server on a free loopback port (plain HTTP) and wait until
 * it answers. Retries with another port if the chosen one was taken meanwhile.
 */
export async function startEmulator(options: StartEmulatorOptions = {}): Promise<Emulator> {
  const { backend = "memory", readyTimeout = 30_000 } = options;
  const binary = await ensureEmulatorBinary();
  for (let attempt = 1;; attempt++) {
    try {
      return await launch(binary, backend, readyTimeout);
    } catch (error) {
      if (attempt >= 3) throw error;
    }
  }
}

async function launch(
  binary: string,
  backend: "memory" | "filesystem",
  readyTimeout: number,
): Promise<Emulator> {
  const port = freePort();
  const host = `127.0.0.1:${port}`;
  const url = `http://${host}`;
  const root = backend === "filesystem" ? await Deno.makeTempDir({ prefix: "kf-gcs-" }) : "";
  const args = [
    ["-scheme", "http"],
    ["-host", "127.0.0.1"],
    ["-port", String(port)],
    ["-external-url", url],
    ["-backend", backend],
    ["-log-level", "error"],
    ...(root ? [["-filesystem-root", root]] : []),
  ].flat();
  const child = new Deno.Command(binary, { args, stdout: "piped", stderr: "piped" }).spawn();
  let output = "";
  const decoder = new TextDecoder();
  const drain = (stream: ReadableStream<Uint8Array>) =>
    stream.pipeTo(
      new WritableStream({
        write(chunk) {
          output = (output + decoder.decode(chunk)).slice(-20_000);
        },
      }),
    ).catch(() => {});
  const drained = Promise.all([drain(child.stdout), drain(child.stderr)]);
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });

  const stop = async () => {
    if (!exited) {
      try {
        child.kill("SIGTERM");
      } catch {
        // already gone
      }
      const timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch {
          // already gone
        }
      }, 5_000);
      await status;
      clearTimeout(timer);
    }
    await drained;
    if (root) await Deno.remove(root, { recursive: true }).catch(() => {});
  };

  const deadline = Date.now() + readyTimeout;
  for (;;) {
    if (exited) {
      await stop();
      throw new Error(`The GCS emulator exited before it was ready:\n${output}`);
    }
    try {
      const response = await fetch(`${url}/_internal/healthcheck`);
      await response.body?.cancel();
      if (response.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(
        `The GCS emulator did not answer on ${url} within ${readyTimeout} ms:\n${output}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }

  return {
    host,
    url,
    async createBucket(name: string) {
      const response = await fetch(`${url}/storage/v1/b?project=test`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ name }),
      });
      const text = await response.text();
      if (!response.ok && response.status !== 409) {
        throw new Error(
          `Cannot create bucket '${name}' on the emulator: ${response.status} ${text}`,
        );
      }
    },
    log: () => output,
    [Symbol.asyncDispose]: stop,
  };
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
