/**
 * Running a GCS emulator process for tests, whichever emulator it is: start
 * it, keep the tail of its output, wait until it answers, create buckets, and
 * stop it.
 *
 * @module
 */

/** A running emulator. Dispose it to stop the process. */
export interface Emulator extends AsyncDisposable {
  /** Which emulator and version, e.g. `fake-gcs-server v1.56.1`. */
  readonly name: string;
  /** `127.0.0.1:PORT`, the form other GCS clients take in `STORAGE_EMULATOR_HOST`. */
  readonly host: string;
  /** `http://127.0.0.1:PORT`, the API endpoint. */
  readonly url: string;
  /** Create a bucket (no error if it exists). */
  createBucket(name: string): Promise<void>;
  /** The emulator's output so far (for failure messages). */
  log(): string;
}

/** How to run one emulator process. */
export interface EmulatorProcess {
  /** Which emulator and version, for messages. */
  name: string;
  /** The program. */
  command: string;
  /** Its arguments for a given port. */
  args(port: number): string[];
  /** Path answered with 200 once it is ready, e.g. `/_internal/healthcheck`. */
  healthPath: string;
  /** How long to wait for it, in ms. */
  readyTimeout: number;
  /** Extra environment. */
  env?: Record<string, string>;
  /** Called after the process stopped (e.g. to remove its data directory). */
  cleanUp?: () => Promise<void>;
}

/** Pick a free loopback TCP port (the kernel's choice, released right away). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/**
 * Start an emulator on a free loopback port and wait until it answers;
 * retry with another port if the chosen one was taken meanwhile.
 *
 * @throws {Error} It exited or did not answer in time; the message has its output.
 */
export async function startEmulatorProcess(spec: EmulatorProcess): Promise<Emulator> {
  for (let attempt = 1;; attempt++) {
    try {
      return await launch(spec);
    } catch (error) {
      if (attempt >= 3) throw error;
    }
  }
}

async function launch(spec: EmulatorProcess): Promise<Emulator> {
  const port = freePort();
  const host = `127.0.0.1:${port}`;
  const url = `http://${host}`;
  const child = new Deno.Command(spec.command, {
    args: spec.args(port),
    env: spec.env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
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
    await spec.cleanUp?.();
  };

  const deadline = Date.now() + spec.readyTimeout;
  for (;;) {
    if (exited) {
      await stop();
      throw new Error(`${spec.name} exited before it was ready:\n${output}`);
    }
    try {
      const response = await fetch(`${url}${spec.healthPath}`);
      await response.body?.cancel();
      if (response.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(
        `${spec.name} did not answer on ${url} within ${spec.readyTimeout} ms:\n${output}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }

  return {
    name: spec.name,
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
          `Cannot create bucket '${name}' on ${spec.name}: ${response.status} ${text}`,
        );
      }
    },
    log: () => output,
    [Symbol.asyncDispose]: stop,
  };
}
