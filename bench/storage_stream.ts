/**
 * Benchmark: a 1 GiB object streamed up and down through the Storage seam
 * (local directory and the GCS emulator), with the process's peak memory:
 * large inputs and results never sit whole in the master's memory.
 *
 * ```sh
 * deno task bench storage-stream
 * ```
 *
 * @module
 */

import { join } from "node:path";
import type { StreamReport, StreamSpec } from "./drivers/storage_stream.ts";
import type { BenchContext, Benchmark, BenchResult } from "./support/bench.ts";
import { main } from "./support/bench.ts";
import { benchEmulator, newBucket } from "./support/emulator.ts";
import { REPO, withTempStorage } from "./support/kubeface.ts";
import { lastJson, measure } from "./support/process.ts";
import { fixed, median, mib } from "./support/stats.ts";
import type { Table } from "./support/table.ts";

async function sample(spec: StreamSpec, env: Record<string, string>): Promise<StreamReport> {
  const m = await measure(Deno.execPath(), [
    "run",
    "-A",
    `--config=${join(REPO, "deno.json")}`,
    join(REPO, "bench", "drivers", "storage_stream.ts"),
    JSON.stringify(spec),
  ], { cwd: REPO, env });
  return lastJson<StreamReport>(m, "the storage stream driver");
}

async function run(context: BenchContext): Promise<BenchResult> {
  const size = context.quick ? 64 * 2 ** 20 : 2 ** 30;
  const rows: string[][] = [];
  const skipped: string[] = [];
  const add = (storage: string, reports: StreamReport[]) => {
    const med = (f: (r: StreamReport) => number) => median(reports.map(f));
    rows.push([
      storage,
      String(reports.length),
      fixed(med((r) => r.putMs) / 1000, 1),
      fixed((size / 2 ** 20) / (med((r) => r.putMs) / 1000), 0),
      fixed(med((r) => r.getMs) / 1000, 1),
      fixed((size / 2 ** 20) / (med((r) => r.getMs) / 1000), 0),
      mib(med((r) => r.baseBytes)),
      mib(med((r) => r.vmHwmBytes)),
      `${fixed((100 * med((r) => r.vmHwmBytes - r.baseBytes)) / size, 1)} %`,
    ]);
  };
  const local: StreamReport[] = [];
  for (let i = 1; i <= context.runs; i++) {
    context.log(`run ${i}: local directory`);
    local.push(await withTempStorage((dir) => sample({ storage: dir, size }, {})));
  }
  add("local directory", local);
  const started = await benchEmulator();
  if (!started.ok) skipped.push(`storage-stream through GCS: ${started.reason}`);
  else {
    await using emulator = started.emulator;
    const gcs: StreamReport[] = [];
    context.log("run 1: GCS emulator");
    const storage = `gs://${await newBucket(emulator, "kf-bench-stream")}/x/`;
    gcs.push(await sample({ storage, size }, { STORAGE_EMULATOR_HOST: emulator.url }));
    add("GCS emulator (16 MiB resumable chunks)", gcs);
  }
  const table: Table = {
    title: `Storage: a ${mib(size)} MiB object streamed up and down, never whole in memory`,
    columns: [
      "Storage",
      "Runs",
      "Put s",
      "Put MiB/s",
      "Get s",
      "Get MiB/s",
      "RSS before MiB",
      "Peak RSS MiB",
      "Peak growth / size",
    ],
    rows,
    notes: [
      "bench/drivers/storage_stream.ts opens the storage, writes a small object (to load the client), then puts the object from a stream of generated 8 MiB pieces and reads it back chunk by chunk into a byte count. Peak RSS is the process's VmHWM; growth is over the RSS before the transfer.",
      "The GCS emulator re-hashes the whole object on every resumable chunk, so its upload costs O(chunks²) there; real GCS does not. The GCS row runs once at this size.",
    ],
  };
  return { tables: [table], skipped };
}

/** Benchmark: a large object through the Storage seam, with the peak memory. */
export const storageStream: Benchmark = {
  name: "storage-stream",
  description: "a 1 GiB object streamed up and down through local storage and the GCS emulator",
  run,
};

if (import.meta.main) await main(storageStream, join("bench", "storage_stream.ts"));
