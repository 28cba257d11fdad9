// deno-lint-ignore-file no-console
/**
 * The data path without kubeface, as a baseline: the same four transfers a
 * kubeface task with a large input and result makes (master writes the
 * input, worker reads it, worker writes the result, master reads it), done
 * with plain file I/O or plain `@google-cloud/storage` calls. Prints one
 * JSON line ({@linkcode PlainReport}). With `--v8-flags=--expose-gc` it
 * collects garbage as soon as a buffer is dropped, so its peak RSS is what
 * the transfers need.
 *
 * ```sh
 * deno run -A --v8-flags=--expose-gc bench/drivers/plain_io.ts '{"mode": "file", "size": 1073741824, "dir": "/tmp/x"}'
 * STORAGE_EMULATOR_HOST=… deno run -A bench/drivers/plain_io.ts '{"mode": "gcs", "size": …, "bucket": "b"}'
 * ```
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { join } from "node:path";

/** What to do. */
export interface PlainSpec {
  mode: "file" | "gcs";
  /** Bytes per object. */
  size: number;
  /** file: directory to write in. */
  dir?: string;
  /** gcs: bucket (on the emulator named by STORAGE_EMULATOR_HOST). */
  bucket?: string;
  /** gcs: resumable upload chunk size; without it the library sends one streamed request. */
  chunkSize?: number;
}

/** Times of the four transfers, in milliseconds, and the process's peak RSS. */
export interface PlainReport {
  steps: { write1: number; read1: number; write2: number; read2: number };
  totalMs: number;
  vmHwmBytes: number;
}

const PIECE = 8 * 2 ** 20;

/** Run a full garbage collection when started with `--v8-flags=--expose-gc`. */
function collect(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

function hwm(): number {
  const status = Deno.readTextFileSync("/proc/self/status");
  return Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN) * 1024;
}

interface Store {
  write(name: string, bytes: Uint8Array): Promise<void>;
  read(name: string, size: number): Promise<Uint8Array>;
  close(): Promise<void>;
}

function fileStore(dir: string): Store {
  return {
    write: (name, bytes) => Deno.writeFile(join(dir, name), bytes),
    // Into one buffer of the known size, as kubeface reads a payload (Deno.readFile
    // would grow and copy a buffer of unknown size).
    async read(name, size) {
      using file = await Deno.open(join(dir, name), { read: true });
      const out = new Uint8Array(size);
      for (let at = 0; at < size;) {
        const n = await file.read(out.subarray(at));
        if (n === null) throw new Error(`${name} ended after ${at} of ${size} bytes`);
        at += n;
      }
      return out;
    },
    async close() {
      for (const name of ["object-1", "object-2"]) {
        await Deno.remove(join(dir, name)).catch(() => {});
      }
    },
  };
}

async function gcsStore(spec: PlainSpec): Promise<Store> {
  const { Storage } = await import("@google-cloud/storage");
  const host = Deno.env.get("STORAGE_EMULATOR_HOST") ?? "";
  const endpoint = new URL(/^https?:\/\//.test(host) ? host : `http://${host}`).origin;
  const client = new Storage({ apiEndpoint: endpoint, projectId: "kubeface-bench" });
  (client as unknown as { baseUrl: string }).baseUrl = `${endpoint}/storage/v1`;
  const bucket = client.bucket(spec.bucket!);
  return {
    async write(name, bytes) {
      const stream = bucket.file(name).createWriteStream({
        resumable: true,
        validation: "md5",
        ...(spec.chunkSize ? { chunkSize: spec.chunkSize } : {}),
      });
      const done = new Promise<void>((resolve, reject) => {
        stream.once("finish", resolve);
        stream.once("error", reject);
      });
      for (let at = 0; at < bytes.length; at += PIECE) {
        const piece = Buffer.from(
          bytes.buffer,
          bytes.byteOffset + at,
          Math.min(PIECE, bytes.length - at),
        );
        if (!stream.write(piece)) await new Promise((resolve) => stream.once("drain", resolve));
      }
      stream.end();
      await done;
    },
    async read(name, size) {
      const out = new Uint8Array(size);
      let at = 0;
      for await (const chunk of bucket.file(name).createReadStream({ validation: false })) {
        out.set(chunk as Uint8Array, at);
        at += (chunk as Uint8Array).length;
      }
      return out;
    },
    async close() {
      for (const name of ["object-1", "object-2"]) {
        await bucket.file(name).delete().catch(() => {});
      }
    },
  };
}

async function main(spec: PlainSpec): Promise<PlainReport> {
  const store = spec.mode === "file" ? fileStore(spec.dir!) : await gcsStore(spec);
  try {
    const time = async <T>(fn: () => Promise<T>): Promise<[T, number]> => {
      const started = performance.now();
      const value = await fn();
      return [value, performance.now() - started];
    };
    const started = performance.now();
    // Hold each buffer only as long as the task would, so the peak RSS is comparable.
    let input: Uint8Array | undefined = new Uint8Array(spec.size).fill(7);
    const [, write1] = await time(() => store.write("object-1", input!));
    input = undefined;
    collect();
    const [read, read1] = await time(() => store.read("object-1", spec.size));
    let got: Uint8Array | undefined = read;
    got[0]! ^= 1; // the "task"
    const [, write2] = await time(() => store.write("object-2", got!));
    got = undefined;
    collect();
    const [back, read2] = await time(() => store.read("object-2", spec.size));
    if (back.length !== spec.size || back[0] !== (7 ^ 1)) {
      throw new Error(`the plain ${spec.mode} round trip returned other bytes`);
    }
    return {
      steps: { write1, read1, write2, read2 },
      totalMs: performance.now() - started,
      vmHwmBytes: hwm(),
    };
  } finally {
    await store.close();
  }
}

if (import.meta.main) {
  console.log(JSON.stringify(await main(JSON.parse(Deno.args[0] ?? "{}") as PlainSpec)));
}
