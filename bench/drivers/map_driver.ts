// deno-lint-ignore-file no-console
/**
 * The master of a benchmark job, run as its own process so its time, CPU and
 * peak memory are its own: maps a task module with kubeface and prints one
 * JSON line ({@linkcode MapReport}).
 *
 * ```sh
 * deno run -A bench/drivers/map_driver.ts '{"module": "/abs/square.ts", "count": 200, …}'
 * ```
 *
 * `root` picks the kubeface checkout whose `mod.ts` is imported, so a
 * benchmark can run an older revision (extracted with `git archive`) next to
 * the working tree.
 *
 * @module
 */

import process from "node:process";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

/** What to run. */
export interface MapSpec {
  /** Kubeface checkout to import `mod.ts` from. @default {this repository} */
  root?: string;
  /** Absolute path of the task module. */
  module: string;
  /** Map over `0 … count-1`. */
  count?: number;
  /** Map over these inputs. Without `count` or `inputs`, the module's own inputs. */
  inputs?: unknown[];
  /** Storage root URL. */
  storage: string;
  /** Backend name. @default {"local"} */
  backend?: string;
  /** The local backend's warm-worker mode. @default {false} */
  warm?: boolean;
  /** Options of the Kubernetes backend (e.g. `{"kubeconfig": …, "namespace": …}`). */
  kubernetes?: Record<string, unknown>;
  /** Most tasks at once. */
  parallelism: number;
  /** Job key. */
  job?: string;
  /** Speculative reruns on (kubeface's default) or off. @default {true} */
  speculation?: boolean;
  /** Retries of a failed task. @default {kubeface's default} */
  maxRetries?: number;
  /** Inputs uploaded at once. @default {kubeface's default} */
  uploadConcurrency?: number;
  /** Time between RSS samples, in milliseconds. @default {50} */
  sampleMs?: number;
}

/** What the master saw. Times are milliseconds since the process started. */
export interface MapReport {
  job: string;
  /** When the job was prepared (module loaded, bundled, inputs uploaded). */
  readyMs: number;
  /** The same as a Unix time in milliseconds. */
  readyAt: number;
  /** When the first result arrived. */
  firstMs: number;
  /** When the last result arrived. */
  lastMs: number;
  /** When the iteration ended: the job closed (workers stopped, final status written). */
  doneMs: number;
  /** Number of results. */
  results: number;
  /** Sum of numeric results, or of byte lengths of byte results. */
  checksum: number;
  /** CPU of this process alone, in milliseconds. */
  selfCpuMs: number;
  /** CPU of the children it waited for (workers, deno bundle), in milliseconds. */
  childCpuMs: number;
  /** Peak resident memory of this process, in bytes. */
  vmHwmBytes: number;
  /**
   * Memory while results were consumed: [ms, RSS bytes, results so far, V8
   * heap used bytes, external (ArrayBuffer) bytes].
   */
  rssSamples: [number, number, number, number, number][];
  /**
   * V8 heap used right after a full collection when 90 % of the results had arrived: the live
   * set, apart from garbage not yet collected. Only when the driver runs with
   * `--v8-flags=--expose-gc`.
   */
  liveHeapBytes?: number;
}

/** Read a stored file to its end, as a consumer would, and count its bytes. */
async function streamedBytes(file: { stream(): Promise<ReadableStream<Uint8Array>> }) {
  let bytes = 0;
  for await (const chunk of await file.stream()) bytes += chunk.length;
  return bytes;
}

function procSelf(): { hwm: number; childCpuMs: number } {
  const status = Deno.readTextFileSync("/proc/self/status");
  const hwm = Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN) * 1024;
  // Fields after the command name: state is field 3; cutime and cstime are fields 16 and 17.
  const stat = Deno.readTextFileSync("/proc/self/stat");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[13]) + Number(fields[14]);
  return { hwm, childCpuMs: ticks * 10 }; // CLK_TCK is 100 on Linux
}

async function main(spec: MapSpec): Promise<MapReport> {
  const root = spec.root ?? new URL("../..", import.meta.url).pathname;
  const kubeface = await import(
    pathToFileURL(join(root, "mod.ts")).href
  ) as typeof import("../../mod.ts");
  const inputs = spec.inputs ??
    (spec.count === undefined ? undefined : Array.from({ length: spec.count }, (_, i) => i));
  const local = { warm: spec.warm ?? false };
  const client = new kubeface.Client({
    storage: spec.storage,
    backend: (spec.backend ?? "local") as "local",
    local,
    ...(spec.kubernetes ? { kubernetes: spec.kubernetes } : {}),
  });
  let readyMs = NaN;
  let readyAt = NaN;
  const run = client.map(spec.module, {
    inputs,
    parallelism: spec.parallelism,
    job: spec.job,
    ...(spec.speculation === false ? { speculationPercent: 0 } : {}),
    ...(spec.maxRetries === undefined ? {} : { maxRetries: spec.maxRetries }),
    ...(spec.uploadConcurrency ? { uploadConcurrency: spec.uploadConcurrency } : {}),
    onStart: () => {
      readyMs = performance.now();
      readyAt = Date.now();
    },
  });
  let results = 0;
  let checksum = 0;
  let firstMs = NaN;
  let lastMs = NaN;
  let liveHeapBytes: number | undefined;
  const gc = (globalThis as { gc?: () => void }).gc;
  const liveAt = Math.ceil(0.9 * (inputs?.length ?? Infinity));
  const rssSamples: [number, number, number, number, number][] = [];
  const sampler = setInterval(() => {
    const { rss, heapUsed, external } = Deno.memoryUsage();
    rssSamples.push([performance.now(), rss, results, heapUsed, external]);
  }, spec.sampleMs ?? 50);
  try {
    for await (const value of run) {
      lastMs = performance.now();
      if (results === 0) firstMs = lastMs;
      results++;
      if (gc && results === liveAt) {
        gc();
        liveHeapBytes = Deno.memoryUsage().heapUsed;
      }
      checksum += typeof value === "number"
        ? value
        : value instanceof Uint8Array
        ? value.byteLength
        : "StoredFile" in kubeface && value instanceof kubeface.StoredFile
        ? await streamedBytes(value)
        : 1;
    }
  } finally {
    clearInterval(sampler);
  }
  const doneMs = performance.now();
  const usage = process.cpuUsage();
  const self = procSelf();
  return {
    job: run.job,
    readyMs,
    readyAt,
    firstMs,
    lastMs,
    doneMs,
    results,
    checksum,
    selfCpuMs: (usage.user + usage.system) / 1000,
    childCpuMs: self.childCpuMs,
    vmHwmBytes: self.hwm,
    rssSamples,
    ...(liveHeapBytes === undefined ? {} : { liveHeapBytes }),
  };
}

if (import.meta.main) {
  const spec = JSON.parse(Deno.args[0] ?? "{}") as MapSpec;
  console.log(JSON.stringify(await main(spec)));
}
