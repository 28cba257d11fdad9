/**
 * Benchmark 3, data path: one task whose input and result are 1 GiB,
 * through local storage and through the GCS emulator, against the same four
 * transfers done plainly (file I/O; `@google-cloud/storage` uploads and
 * downloads), with the master's peak RSS; then what recovering a resumable
 * upload broken half way costs, kubeface's against the library's.
 *
 * ```sh
 * deno task bench data-path
 * ```
 *
 * @module
 */

import { join } from "node:path";
import type { BenchContext, Benchmark, BenchResult } from "./support/bench.ts";
import { main } from "./support/bench.ts";
import type { PlainReport, PlainSpec } from "./drivers/plain_io.ts";
import { resultHeaders } from "../tests/support/jobs.ts";
import { benchEmulator, newBucket } from "./support/emulator.ts";
import { benchModule, REPO, runDriver, withTempStorage } from "./support/kubeface.ts";
import { lastJson, measure } from "./support/process.ts";
import { fixed, median, mib, ratio } from "./support/stats.ts";
import type { Table } from "./support/table.ts";
import { samplePeakRss } from "./support/peak_rss.ts";
import { uploadRecovery } from "./support/upload_recovery.ts";

/** kubeface's resumable upload chunk size (lib/storage/gcs.ts `GCS_DEFAULTS.chunkSize`). */
const KUBEFACE_CHUNK = 16 * 2 ** 20;

interface Sample {
  wallMs: number;
  /** Master (or plain driver) peak RSS; none for `cp`. */
  peakBytes: number | undefined;
  /** kubeface: time to job ready (input uploaded) and to the result read. */
  readyMs?: number;
  doneMs?: number;
  /** kubeface: the worker's RSS when it stored the result. */
  workerRssBytes?: number;
  /** plain: the four transfers. */
  steps?: PlainReport["steps"];
}

interface Row {
  storage: string;
  path: string;
  runs: number;
  sample(): Promise<Sample>;
}

async function workerRss(storageUrl: string, job: string): Promise<number | undefined> {
  const headers = await resultHeaders(storageUrl, job);
  return headers.find((h) => h.status === "ok")?.rssBytes;
}

async function kubefaceSample(storage: string, size: number, env: Record<string, string>) {
  const { measured, report } = await runDriver({
    module: benchModule("gigabyte.ts"),
    storage,
    parallelism: 1,
    speculation: false,
  }, { env: { ...env, KUBEFACE_BENCH_BYTES: String(size) } });
  if (report.results !== 1 || report.checksum !== size) {
    throw new Error(`the data-path job returned ${report.checksum} bytes, expected ${size}`);
  }
  return {
    wallMs: measured.wallMs,
    peakBytes: report.vmHwmBytes,
    readyMs: report.readyMs,
    doneMs: report.doneMs,
    workerRssBytes: await workerRss(storage, report.job),
  };
}

/**
 * The same job with a file input and a file result (`file(path)`): the
 * input file is written first (not timed), and the workers' peak RSS is
 * sampled from /proc while they run.
 */
async function kubefaceFileSample(storage: string, size: number, env: Record<string, string>) {
  const dir = await Deno.makeTempDir({ prefix: "kubeface-bench-file-" });
  try {
    const input = join(dir, "input.bin");
    await writeFilled(input, size);
    const job = `data-path-file-${crypto.randomUUID().slice(0, 8)}`;
    const workers = samplePeakRss(new RegExp(`worker\\.ts .*--job ${job}\\b`));
    const { measured, report } = await runDriver({
      module: benchModule("gigabyte_file.ts"),
      storage,
      parallelism: 1,
      speculation: false,
      job,
    }, { env: { ...env, KUBEFACE_BENCH_FILE: input } });
    const workerPeak = await workers.stop();
    if (report.results !== 1 || report.checksum !== size) {
      throw new Error(
        `the file data-path job read back ${report.checksum} bytes, expected ${size}`,
      );
    }
    return {
      wallMs: measured.wallMs,
      peakBytes: report.vmHwmBytes,
      readyMs: report.readyMs,
      doneMs: report.doneMs,
      workerRssBytes: workerPeak || undefined,
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function plainSample(spec: PlainSpec, env: Record<string, string> = {}): Promise<Sample> {
  const m = await measure(Deno.execPath(), [
    "run",
    "-A",
    "--v8-flags=--expose-gc",
    `--config=${join(REPO, "deno.json")}`,
    join(REPO, "bench", "drivers", "plain_io.ts"),
    JSON.stringify(spec),
  ], { cwd: REPO, env });
  const report = lastJson<PlainReport>(m, `the plain ${spec.mode} driver`);
  return { wallMs: m.wallMs, peakBytes: report.vmHwmBytes, steps: report.steps };
}

/** Write `size` bytes of 7s to `path` in 8 MiB pieces (no big buffer). */
async function writeFilled(path: string, size: number): Promise<void> {
  using file = await Deno.open(path, { write: true, create: true, truncate: true });
  const piece = new Uint8Array(8 * 2 ** 20).fill(7);
  for (let at = 0; at < size; at += piece.length) {
    await file.write(piece.subarray(0, Math.min(piece.length, size - at)));
  }
}

/** `cp` the input file to a "worker" copy, then to a "result" copy. */
async function copySample(dir: string, size: number): Promise<Sample> {
  const [a, b, c] = ["input", "worker-copy", "result"].map((n) => join(dir, n)) as [
    string,
    string,
    string,
  ];
  await writeFilled(a, size);
  const m = await measure("bash", ["-c", `cp '${a}' '${b}' && cp '${b}' '${c}'`]);
  if (m.code !== 0) throw new Error(`cp failed: ${m.stderr}`);
  return { wallMs: m.wallMs, peakBytes: undefined };
}

async function run(context: BenchContext): Promise<BenchResult> {
  const size = context.quick ? 64 * 2 ** 20 : 2 ** 30;
  const gcsRuns = context.quick ? 1 : 1;
  const skipped: string[] = [];
  const rows: Row[] = [
    {
      storage: "local directory",
      path: "kubeface map (master → storage → worker → storage → master)",
      runs: context.runs,
      sample: () => withTempStorage((dir) => kubefaceSample(dir, size, {})),
    },
    {
      storage: "local directory",
      path: "kubeface map, file(path) input and file result",
      runs: context.runs,
      sample: () => withTempStorage((dir) => kubefaceFileSample(dir, size, {})),
    },
    {
      storage: "local directory",
      path: "plain file I/O: write, read, write, read",
      runs: context.runs,
      sample: () => withTempStorage((dir) => plainSample({ mode: "file", size, dir })),
    },
    {
      storage: "local directory",
      path: "plain `cp` of the file, twice (input → worker copy → result)",
      runs: context.runs,
      sample: () => withTempStorage((dir) => copySample(dir, size)),
    },
  ];
  const started = await benchEmulator();
  try {
    if (!started.ok) {
      skipped.push(`data-path through GCS: ${started.reason}`);
    } else {
      const emulator = started.emulator;
      const env = { STORAGE_EMULATOR_HOST: emulator.url };
      Deno.env.set("STORAGE_EMULATOR_HOST", emulator.url); // to read result headers here
      rows.push(
        {
          storage: "GCS emulator",
          path: "kubeface map (16 MiB resumable chunks)",
          runs: gcsRuns,
          sample: async () =>
            kubefaceSample(`gs://${await newBucket(emulator, "kf-bench-data")}/runs/`, size, env),
        },
        {
          storage: "GCS emulator",
          path: "kubeface map, file(path) input and file result",
          runs: gcsRuns,
          sample: async () =>
            kubefaceFileSample(
              `gs://${await newBucket(emulator, "kf-bench-file")}/runs/`,
              size,
              env,
            ),
        },
        {
          storage: "GCS emulator",
          path: "@google-cloud/storage: upload, download ×2 (one streamed request)",
          runs: gcsRuns,
          sample: async () =>
            plainSample(
              { mode: "gcs", size, bucket: await newBucket(emulator, "kf-bench-plain") },
              env,
            ),
        },
        {
          storage: "GCS emulator",
          path: "@google-cloud/storage: the same, 16 MiB resumable chunks",
          runs: gcsRuns,
          sample: async () =>
            plainSample({
              mode: "gcs",
              size,
              bucket: await newBucket(emulator, "kf-bench-plain"),
              chunkSize: KUBEFACE_CHUNK,
            }, env),
        },
      );
    }

    const samples = new Map<Row, Sample[]>(rows.map((r) => [r, []]));
    const most = Math.max(...rows.map((r) => r.runs));
    for (let i = 1; i <= most; i++) {
      for (const row of rows) {
        if (i > row.runs) continue;
        context.log(`run ${i}: ${row.storage}, ${row.path}`);
        const s = await row.sample();
        context.log(`  ${fixed(s.wallMs / 1000, 1)} s, peak RSS ${mib(s.peakBytes)} MiB`);
        samples.get(row)!.push(s);
      }
    }

    const med = (row: Row, f: (s: Sample) => number | undefined) => {
      const values = samples.get(row)!.map(f).filter((v): v is number => v !== undefined);
      return values.length ? median(values) : undefined;
    };
    const plainOf = (storage: string) =>
      rows.find((r) =>
        r.storage === storage && r.path.startsWith(storage === "GCS emulator" ? "@" : "plain `cp`")
      );
    const moved = 4 * size;
    const table: Table = {
      title: `Data path: one task with a ${mib(size)} MiB input and a ${mib(size)} MiB result`,
      columns: [
        "Storage",
        "Path",
        "Runs",
        "Wall s",
        "MiB/s (4 transfers / wall)",
        "Split s",
        "Peak RSS MiB (master)",
        "Worker RSS MiB",
        "vs plain (wall)",
      ],
      rows: rows.map((row) => {
        const wall = med(row, (s) => s.wallMs)!;
        const plain = plainOf(row.storage);
        const split = row.path.startsWith("kubeface")
          ? `ready ${fixed((med(row, (s) => s.readyMs) ?? NaN) / 1000, 1)}, run+read ${
            fixed(
              ((med(row, (s) => s.doneMs) ?? NaN) - (med(row, (s) => s.readyMs) ?? NaN)) / 1000,
              1,
            )
          }`
          : !samples.get(row)![0]?.steps
          ? "–"
          : ["write1", "read1", "write2", "read2"].map((k) =>
            fixed((med(row, (s) => s.steps?.[k as keyof PlainReport["steps"]]) ?? NaN) / 1000, 1)
          ).join(" / ");
        return [
          row.storage,
          row.path,
          String(samples.get(row)!.length),
          fixed(wall / 1000, 1),
          fixed(moved / 2 ** 20 / (wall / 1000), 0),
          split,
          mib(med(row, (s) => s.peakBytes)),
          mib(med(row, (s) => s.workerRssBytes)),
          plain && plain !== row ? ratio(wall, med(plain, (s) => s.wallMs)) : "–",
        ];
      }),
      notes: [
        "Wall is the whole command, from process start to exit: for kubeface the master (bench/drivers/map_driver.ts) loads and bundles the module, uploads the input, runs one worker process (which reads the input and writes the result) and reads the result back; the plain driver (bench/drivers/plain_io.ts) does the same four transfers in one process.",
        "Split: kubeface — time to job ready (module bundled, input uploaded) and from ready to the result read back; plain — write / read / write / read.",
        "Peak RSS is the VmHWM of the master process (plain: of the one process doing all four transfers, which collects garbage as soon as it drops a buffer). Worker RSS is what the worker recorded in its result header when it finished, or, for the file rows, the workers' VmHWM sampled from /proc every 25 ms.",
        "The file rows map `file(path)` over a 1 GiB file and return a file (bench/modules/gigabyte_file.ts): the master streams the input file up, the worker fetches it to its scratch directory, copies it there and streams the copy up, and the master streams the result down (counting its bytes, as a consumer saving it would).",
        "The `cp` row copies a file that is already written (its creation is not timed) twice, without the data passing through a JavaScript process: the least a path through files can cost (two reads and two writes, like the four transfers). vs plain compares each local row with it, and each GCS row with the library's plain upload and download in one streamed request.",
        `The GCS emulator (fake-gcs-server, filesystem backend) re-hashes the whole object on every resumable chunk, so a ${
          mib(size)
        } MiB upload in 16 MiB chunks costs O(chunks²) there; real GCS does not. The third GCS row isolates that effect with the same library. GCS rows run ${gcsRuns} time(s) at this size.`,
        "kubeface's resumable uploads are its own (lib/storage/gcs_resumable.ts: JSON API session, status query after a failed chunk, size and MD5 checked end to end) with the library's credentials; the library rows use `createWriteStream`.",
      ],
    };
    const recovery = await uploadRecovery(context, size, gcsRuns);
    if (recovery.skipped) skipped.push(recovery.skipped);
    return { tables: recovery.table ? [table, recovery.table] : [table], skipped };
  } finally {
    if (started.ok) await started.emulator[Symbol.asyncDispose]();
  }
}

/** Benchmark 3: throughput and master memory for a 1 GiB input and result. */
export const dataPath: Benchmark = {
  name: "data-path",
  description:
    "a task with a 1 GiB input and result, local storage and the GCS emulator, vs plain I/O",
  run,
};

if (import.meta.main) await main(dataPath, join("bench", "data_path.ts"));
