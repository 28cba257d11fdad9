/**
 * Benchmark: long tasks under preemption. 20 tasks of about 30 s of steps
 * run at once on the local backend while 30 % of their attempts are killed
 * at random moments; the work recomputed (steps done more than once, from
 * the tasks' own step counts) is measured without checkpoints, with a
 * checkpoint every second and no notice (SIGKILL), and with the same
 * checkpoints and notice (SIGTERM: the task checkpoints on its signal), in
 * the same run. Then the cost of one checkpoint of 1 MB and of 100 MB, to
 * local storage and to the GCS emulator, timed inside the task.
 *
 * ```sh
 * deno task bench preemption
 * ```
 *
 * @module
 */

import { join } from "node:path";
import v8 from "node:v8";
import { Client } from "../mod.ts";
import { openStorage } from "../lib/storage/storage.ts";
import type { Plan } from "./modules/preemptible.ts";
import type { Spec, Timings } from "./modules/checkpoint_cost.ts";
import type { BenchContext, Benchmark, BenchResult } from "./support/bench.ts";
import { main } from "./support/bench.ts";
import { benchEmulator, newBucket } from "./support/emulator.ts";
import { seededRandom } from "./support/idle.ts";
import { benchModule, withTempStorage } from "./support/kubeface.ts";
import { fixed, median } from "./support/stats.ts";
import type { Table } from "./support/table.ts";

const SEED = 20261201;
/** Share of attempts killed. */
const KILL_SHARE = 0.3;

/** How a variant runs its tasks and stops them. */
interface Variant {
  name: string;
  /** Steps between checkpoints; 0 for none. */
  every: number;
  signal: Deno.Signal;
}

/** What one run of a variant did. */
interface Sample {
  attempts: number;
  kills: number;
  stepsDone: number;
  stepsNeeded: number;
  wallMs: number;
}

async function startsIn(dir: string): Promise<Map<string, { pid: number; from: number }>> {
  const starts = new Map<string, { pid: number; from: number }>();
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.name.startsWith("start-")) continue;
    const text = await Deno.readTextFile(join(dir, entry.name)).catch(() => "");
    if (text) starts.set(entry.name, JSON.parse(text));
  }
  return starts;
}

/**
 * Run one variant: every task at once, and a preemptor that picks 30 % of
 * the attempts as they start and stops each at a random moment of the work
 * it has left.
 */
async function sample(
  variant: Variant,
  tasks: number,
  steps: number,
  stepMs: number,
  random: () => number,
): Promise<Sample> {
  return await withTempStorage(async (storage) => {
    const dir = await Deno.makeTempDir({ prefix: "kubeface-bench-preempt-" });
    try {
      const plans: Plan[] = Array.from({ length: tasks }, () => ({
        steps,
        stepMs,
        every: variant.every,
        dir,
      }));
      const client = new Client({ storage, backend: "local" });
      const seen = new Set<string>();
      const timers = new Set<ReturnType<typeof setTimeout>>();
      let watching = true;
      const preemptor = (async () => {
        while (watching) {
          for (const [name, start] of await startsIn(dir)) {
            if (seen.has(name)) continue;
            seen.add(name);
            if (random() >= KILL_SHARE) continue;
            const at = random() * (steps - start.from) * stepMs;
            const timer = setTimeout(() => {
              timers.delete(timer);
              try {
                Deno.kill(start.pid, variant.signal);
              } catch { /* it ended first */ }
            }, at);
            timers.add(timer);
          }
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      })();
      const started = performance.now();
      let results: number[];
      try {
        results = await Array.fromAsync(client.map<Plan, number>(benchModule("preemptible.ts"), {
          inputs: plans,
          parallelism: tasks,
          permissions: [`--allow-read=${dir}`, `--allow-write=${dir}`],
          maxRetries: 50,
          retryDelayMs: 100,
          speculationPercent: 0,
          graceMs: 10_000,
        }));
      } finally {
        watching = false;
        await preemptor;
        for (const timer of timers) clearTimeout(timer);
      }
      const wallMs = performance.now() - started;
      if (results.some((r) => r !== steps)) throw new Error(`wrong results: ${results}`);
      let stepsDone = 0;
      for (let i = 0; i < tasks; i++) stepsDone += (await Deno.stat(join(dir, `steps-${i}`))).size;
      return {
        attempts: seen.size,
        // An attempt that did not finish was stopped: what the preemptor hit, not what it aimed at.
        kills: seen.size - tasks,
        stepsDone,
        stepsNeeded: tasks * steps,
        wallMs,
      };
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  });
}

async function recomputation(context: BenchContext): Promise<Table> {
  const tasks = context.quick ? 6 : 20;
  const steps = context.quick ? 50 : 300;
  const stepMs = 100;
  const every = 10;
  const variants: Variant[] = [
    { name: "no checkpoints, killed (SIGKILL)", every: 0, signal: "SIGKILL" },
    { name: `checkpoint every ${every} steps (1 s), killed (SIGKILL)`, every, signal: "SIGKILL" },
    {
      name: `checkpoint every ${every} steps, preempted (SIGTERM, 10 s grace)`,
      every,
      signal: "SIGTERM",
    },
  ];
  const samples = new Map<Variant, Sample[]>(variants.map((v) => [v, []]));
  for (let run = 1; run <= context.runs; run++) {
    for (const [i, variant] of variants.entries()) {
      context.log(`run ${run}: ${variant.name}`);
      const random = seededRandom(SEED + 97 * run + i);
      samples.get(variant)!.push(await sample(variant, tasks, steps, stepMs, random));
    }
  }
  const rows = variants.map((variant) => {
    const runs = samples.get(variant)!;
    const sum = (f: (s: Sample) => number) => runs.reduce((n, s) => n + f(s), 0);
    const kills = sum((s) => s.kills);
    const recomputed = sum((s) => s.stepsDone - s.stepsNeeded);
    const perKill = kills > 0 ? recomputed / kills : 0;
    const worst = Math.max(
      ...runs.map((s) => s.kills ? (s.stepsDone - s.stepsNeeded) / s.kills : 0),
    );
    return [
      variant.name,
      String(runs.length),
      String(sum((s) => s.attempts)),
      String(kills),
      String(sum((s) => s.stepsNeeded)),
      String(recomputed),
      fixed(perKill, 1),
      variant.every ? fixed(perKill / variant.every, 2) : "–",
      variant.every ? fixed(worst / variant.every, 2) : "–",
      fixed(median(runs.map((s) => s.wallMs)) / 1000, 1),
    ];
  });
  return {
    title: `Preemption: ${tasks} tasks of ${steps} steps of ${stepMs} ms (${
      steps * stepMs / 1000
    } s), ${KILL_SHARE * 100} % of attempts stopped at random moments`,
    columns: [
      "Variant",
      "Runs",
      "Attempts",
      "Kills",
      "Steps needed",
      "Steps recomputed",
      "Recomputed per kill (steps)",
      "per kill (intervals)",
      "worst run (intervals)",
      "Median wall s",
    ],
    rows,
    notes: [
      `All ${tasks} tasks run at once on the local backend (a process per attempt, local storage). A preemptor in the benchmark process sees each attempt start (its marker), picks it with probability ${KILL_SHARE} (seeded), and stops it after a uniform random share of the work it has left: SIGKILL (no notice) or SIGTERM (notice; the task checkpoints on its signal). Kills are the attempts that did not finish.`,
      "Steps recomputed = steps done (one byte appended per step by the task itself, whatever became of its attempt) − steps needed. Without checkpoints a killed attempt's whole progress is lost; with them, at most the steps since the last checkpoint (goal: at most one interval per kill). Variants are interleaved run by run; sums over the runs.",
    ],
  };
}

interface CostRow {
  storage: string;
  bytes: number;
  timings: Timings;
  putMs: number[];
}

/** Time one checkpoint of each size from inside a task, and a plain put of the same bytes. */
async function costs(storage: string, sizes: number[], times: number): Promise<CostRow[]> {
  const client = new Client({ storage, backend: "local" });
  const specs: Spec[] = sizes.map((bytes) => ({ bytes, times }));
  const timings = await Array.fromAsync(
    client.map<Spec, Timings>(benchModule("checkpoint_cost.ts"), {
      inputs: specs,
      parallelism: 1,
      speculationPercent: 0,
    }),
  );
  await using s = await openStorage(storage);
  const rows: CostRow[] = [];
  for (const [i, bytes] of sizes.entries()) {
    const weights = new Float64Array(bytes / 8);
    for (let j = 0; j < weights.length; j++) weights[j] = Math.sin(j);
    const payload = v8.serialize({ step: 0, weights });
    const putMs: number[] = [];
    for (let j = 0; j < times; j++) {
      const started = performance.now();
      await s.put(`plain/${bytes}`, bytes > 1 << 20 ? ReadableStream.from([payload]) : payload);
      putMs.push(performance.now() - started);
    }
    rows.push({ storage, bytes, timings: timings[i]!, putMs });
  }
  return rows;
}

async function checkpointCost(context: BenchContext): Promise<{ table: Table; skipped: string[] }> {
  const mb = 1_000_000;
  const sizes = context.quick ? [mb, 10 * mb] : [mb, 100 * mb];
  const times = context.quick ? 2 : 5;
  const skipped: string[] = [];
  const rows: { label: string; row: CostRow }[] = [];
  for (let run = 1; run <= context.runs; run++) {
    context.log(`run ${run}: checkpoint cost, local storage`);
    await withTempStorage(async (dir) => {
      for (const row of await costs(dir, sizes, times)) {
        rows.push({ label: "local directory", row });
      }
    });
  }
  const started = await benchEmulator();
  if (!started.ok) skipped.push(`checkpoint cost on GCS: ${started.reason}`);
  else {
    await using emulator = started.emulator;
    const previous = Deno.env.get("STORAGE_EMULATOR_HOST");
    Deno.env.set("STORAGE_EMULATOR_HOST", emulator.url);
    try {
      for (let run = 1; run <= context.runs; run++) {
        context.log(`run ${run}: checkpoint cost, GCS emulator`);
        const storage = `gs://${await newBucket(emulator, "kf-bench-ckpt")}/runs/`;
        for (const row of await costs(storage, sizes, times)) {
          rows.push({ label: "GCS emulator", row });
        }
      }
    } finally {
      if (previous === undefined) Deno.env.delete("STORAGE_EMULATOR_HOST");
      else Deno.env.set("STORAGE_EMULATOR_HOST", previous);
    }
  }
  const groups = new Map<string, CostRow[]>();
  for (const { label, row } of rows) {
    const key = `${label}|${row.bytes}`;
    groups.set(key, [...(groups.get(key) ?? []), row]);
  }
  const table: Table = {
    title: "The cost of one checkpoint, from inside the task",
    columns: [
      "Storage",
      "State",
      "Checkpoints",
      "ctx.checkpoint() ms",
      "MB/s",
      "ctx.restore() ms",
      "Storage.put alone ms",
    ],
    rows: [...groups].map(([key, group]) => {
      const [label, bytes] = key.split("|");
      const checkpoint = median(group.flatMap((r) => r.timings.checkpointMs));
      return [
        label!,
        `${Number(bytes) / mb} MB`,
        String(group.reduce((n, r) => n + r.timings.checkpointMs.length, 0)),
        fixed(checkpoint, 1),
        fixed(Number(bytes) / mb / (checkpoint / 1000), 0),
        fixed(median(group.flatMap((r) => r.timings.restoreMs)), 1),
        fixed(median(group.flatMap((r) => r.putMs)), 1),
      ];
    }),
    notes: [
      "The state is `{ step, weights }` with a Float64Array of the given size. ctx.checkpoint() is timed in the task, from the call to its resolution: structured-clone serialization in the task thread, the transfer to the worker, the record's sha256, the atomic write, and a look for a stored result of the task; ctx.restore() likewise (read, sha256 check, transfer, deserialization). Medians over every call of every run.",
      "Storage.put alone: the same serialized bytes written by the benchmark process through kubeface's Storage seam (a stream above 1 MiB, as a checkpoint record is), for comparison. The GCS emulator (fake-gcs-server, filesystem backend) re-hashes a resumable upload at every chunk; real GCS does not.",
    ],
  };
  return { table, skipped };
}

async function run(context: BenchContext): Promise<BenchResult> {
  const first = await recomputation(context);
  const { table, skipped } = await checkpointCost(context);
  return { tables: [first, table], skipped };
}

/** Benchmark: work lost to preemption with and without checkpoints, and what a checkpoint costs. */
export const preemption: Benchmark = {
  name: "preemption",
  description:
    "20 tasks of 30 s with 30 % of attempts killed: work recomputed with and without checkpoints; the cost of a 1 MB and a 100 MB checkpoint",
  run,
};

if (import.meta.main) await main(preemption, join("bench", "preemption.ts"));
