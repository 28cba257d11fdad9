/**
 * Benchmark 2, master memory: tasks that each return 1 MiB, consumed in
 * input order by a master in its own process, at 1,000 and at 10,000 tasks.
 * The master's peak RSS must stay flat as the task count grows.
 *
 * ```sh
 * deno task bench memory
 * ```
 *
 * @module
 */

import { join } from "node:path";
import type { BenchContext, Benchmark, BenchResult } from "./support/bench.ts";
import { main } from "./support/bench.ts";
import type { MapReport } from "./drivers/map_driver.ts";
import { benchModule, hasWarmMode, runDriver, withTempStorage } from "./support/kubeface.ts";
import { run as runCommand } from "./support/process.ts";
import { fixed, median, mib, ratio } from "./support/stats.ts";
import type { Table } from "./support/table.ts";

const MIB = 2 ** 20;
const PARALLELISM = 2;

/** Free bytes on the file system holding `dir` (from `df`). */
async function freeBytes(dir: string): Promise<number> {
  const out = await runCommand("df", ["-Pk", dir]);
  const fields = out.trim().split("\n")[1]?.split(/\s+/) ?? [];
  return Number(fields[3]) * 1024;
}

/** Highest RSS in each tenth of the results consumed (`undefined` for a tenth with no sample). */
function deciles(report: MapReport): (number | undefined)[] {
  const out: (number | undefined)[] = Array(10).fill(undefined);
  for (const [, rss, consumed] of report.rssSamples) {
    const decile = Math.min(9, Math.floor((consumed / report.results) * 10));
    out[decile] = Math.max(out[decile] ?? 0, rss);
  }
  return out;
}

interface Sample {
  report: MapReport;
  wallMs: number;
}

async function measureCount(count: number, warm: boolean): Promise<Sample> {
  return await withTempStorage(async (storage) => {
    const { measured, report } = await runDriver({
      module: benchModule("megabyte.ts"),
      count,
      storage,
      parallelism: PARALLELISM,
      warm,
      sampleMs: 20,
    });
    if (report.results !== count || report.checksum !== count * MIB) {
      throw new Error(`the memory job returned wrong results: ${report.results} results`);
    }
    return { report, wallMs: measured.wallMs };
  });
}

async function run(context: BenchContext): Promise<BenchResult> {
  const counts = context.quick ? [100, 1000] : [1000, 10_000];
  const warm = hasWarmMode();
  const skipped: string[] = [];
  const tmp = Deno.env.get("TMPDIR") ?? "/tmp";
  const needed = (counts[1]! * MIB) * 1.2 + 2 ** 30;
  const free = await freeBytes(tmp);
  if (free < needed) {
    return {
      tables: [],
      skipped: [
        `memory: ${counts[1]} results of 1 MiB need about ${
          mib(needed)
        } MiB free under ${tmp}; only ${mib(free)} MiB are free`,
      ],
    };
  }
  if (!warm) {
    skipped.push(
      "memory: the local backend has no warm mode yet, so the jobs run a process per task (slower, same master)",
    );
  }
  const samples = new Map<number, Sample[]>(counts.map((c) => [c, []]));
  for (let r = 1; r <= context.runs; r++) {
    for (const count of counts) {
      // The large job runs once: it takes minutes and writes count MiB.
      if (count === counts[1] && r > 1) continue;
      context.log(
        `run ${r}: ${count} tasks × 1 MiB (${warm ? "warm workers" : "process per task"})`,
      );
      const s = await measureCount(count, warm);
      context.log(
        `  peak RSS ${mib(s.report.vmHwmBytes)} MiB, ${fixed(s.wallMs / 1000, 1)} s`,
      );
      samples.get(count)!.push(s);
    }
  }

  const med = (count: number, f: (s: Sample) => number) => median(samples.get(count)!.map(f));
  const small = med(counts[0]!, (s) => s.report.vmHwmBytes);
  const rows = counts.map((count) => {
    const peak = med(count, (s) => s.report.vmHwmBytes);
    const start = med(count, (s) => s.report.rssSamples[0]?.[1] ?? NaN);
    const wall = med(count, (s) => s.wallMs);
    const peakOf = (s: Sample, field: 3 | 4, consuming: boolean) =>
      Math.max(
        0,
        ...s.report.rssSamples.filter((x) => (x[2] > 0) === consuming).map((x) => x[field]),
      );
    const heapBefore = med(count, (s) => peakOf(s, 3, false));
    const heap = med(count, (s) => peakOf(s, 3, true));
    const external = med(count, (s) => peakOf(s, 4, true));
    // The lowest heap use once a tenth of the results are in: what stays alive after collections.
    const floor = med(count, (s) =>
      Math.min(
        ...s.report.rssSamples.filter((x) => x[2] >= s.report.results / 10).map((x) => x[3]),
      ));
    const calls = med(count, (s) => s.report.lastMs - s.report.readyMs);
    return [
      count.toLocaleString("en-US"),
      String(samples.get(count)!.length),
      mib(peak),
      `${mib(heapBefore)} / ${mib(heap)}`,
      mib(floor),
      mib(external),
      mib(start),
      fixed((count * MIB) / (calls / 1000) / MIB, 0),
      fixed(wall / 1000, 1),
      ratio(peak, small),
    ];
  });
  const decileRows = counts.map((count) => {
    const first = samples.get(count)![0]!;
    return [count.toLocaleString("en-US"), ...deciles(first.report).map((b) => mib(b))];
  });
  const tables: Table[] = [
    {
      title: "Master memory: tasks returning 1 MiB each, consumed in input order",
      columns: [
        "Tasks",
        "Runs",
        "Master peak RSS MiB",
        "Peak V8 heap used MiB (before first result / consuming)",
        "V8 heap floor MiB (consuming)",
        "Peak external MiB (consuming)",
        "RSS at start MiB",
        "Results MiB/s",
        "Wall s",
        `Peak vs ${counts[0]!.toLocaleString("en-US")} tasks`,
      ],
      rows,
      notes: [
        `The master is bench/drivers/map_driver.ts in its own process; peak RSS is its VmHWM (workers are other processes). Local storage in a temporary directory, parallelism ${PARALLELISM}, ${
          warm ? "warm workers" : "a process per task"
        }.`,
        `The ${counts[1]!.toLocaleString("en-US")}-task job runs once (it writes ${
          counts[1]
        } MiB of results); the smaller one ${context.runs} times (median).`,
        "RSS at start is the first sample, taken 20 ms after the master began mapping. Results MiB/s counts result bytes consumed over the time from job ready to last result.",
        "Peak V8 heap used and peak external (ArrayBuffer) memory are the highest of Deno.memoryUsage() samples every 20 ms, before the first result (module loading, bundling, input upload, submission) and while results are consumed: what the master's JavaScript holds (heap used includes garbage not yet collected). External is bounded by the read-ahead of results (64 MiB). The heap floor is the lowest heap use once a tenth of the results are in, i.e. what survives collections: the live state. When RSS grows while the floor and external stay flat, the growth is garbage between collections (peak heap) and memory the process keeps after freeing it (allocator and V8 page retention), not results or task state kept alive.",
      ],
    },
    {
      title:
        "Master RSS (MiB) by tenth of the results consumed (highest sample in each tenth, first run)",
      columns: ["Tasks", ...Array.from({ length: 10 }, (_, i) => `${(i + 1) * 10}%`)],
      rows: decileRows,
    },
  ];
  return { tables, skipped };
}

/** Benchmark 2: the master's peak memory as the task count grows. */
export const memory: Benchmark = {
  name: "memory",
  description: "master peak RSS consuming 1,000 and 10,000 results of 1 MiB in order",
  run,
};

if (import.meta.main) await main(memory, join("bench", "memory.ts"));
