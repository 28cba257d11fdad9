/**
 * Benchmark 5, scheduling fairness: with parallelism P and tasks of random
 * length, the capacity left idle while tasks wait (the integral over the
 * job of P minus the running tasks, from the workers' own start and end
 * records) as a fraction of P × the job's wall time, next to the idle
 * fraction an ideal scheduler with no overhead would leave (only the tail).
 *
 * ```sh
 * deno task bench fairness
 * ```
 *
 * @module
 */

import { join } from "node:path";
import type { BenchContext, Benchmark, BenchResult } from "./support/bench.ts";
import { main } from "./support/bench.ts";
import { idleSlotTime, listScheduleMakespan, seededRandom } from "./support/idle.ts";
import {
  benchModule,
  hasKubernetesBackend,
  hasWarmMode,
  runDriver,
  withTempStorage,
} from "./support/kubeface.ts";
import { type BenchCluster, benchCluster, kubectl } from "./support/cluster.ts";
import { benchEmulator, newBucket } from "./support/emulator.ts";
import { resultHeaders } from "../tests/support/jobs.ts";
import type { Emulator } from "../tests/infra/gcs_emulator.ts";
import { fixed, median } from "./support/stats.ts";
import type { Table } from "./support/table.ts";

const PARALLELISM = 4;
const SEED = 20261128;

interface Sample {
  wallMs: number;
  idleMs: number;
  results: number;
  /** From job ready to the first task's start. */
  firstStartMs: number;
}

interface Mode {
  backend: string;
  mode: string;
  skip?: string;
  sample(durations: number[]): Promise<Sample>;
}

/** Idle slot time and the rest, from the workers' own start and end times. */
function summarize(headers: { startedAt: string; endedAt: string }[], from: number): Sample {
  const intervals = headers.map((h) => ({
    start: Date.parse(h.startedAt),
    end: Date.parse(h.endedAt),
  }));
  const to = Math.max(...intervals.map((i) => i.end));
  return {
    wallMs: to - from,
    idleMs: idleSlotTime(intervals, PARALLELISM, from, to),
    results: headers.length,
    firstStartMs: Math.min(...intervals.map((i) => i.start)) - from,
  };
}

function localMode(warm: boolean): Mode {
  return {
    backend: "local",
    mode: warm ? "warm workers" : "process per task",
    skip: warm && !hasWarmMode()
      ? "fairness, local warm workers: the local backend has no `warm` option yet"
      : undefined,
    sample: (durations) =>
      withTempStorage(async (storage) => {
        const { report } = await runDriver({
          module: benchModule("sleep.ts"),
          inputs: durations,
          storage,
          parallelism: PARALLELISM,
          warm,
        });
        const headers = (await resultHeaders(storage, report.job)).filter((h) => h.status === "ok");
        return summarize(headers, report.readyAt);
      }),
  };
}

/** The same tasks as pods of the test cluster, with the GCS emulator as storage. */
function kubernetesMode(env: KubernetesEnv | undefined): Mode {
  return {
    backend: "kubernetes",
    mode: "a pod per task (test cluster: pods are local processes)",
    skip: !hasKubernetesBackend()
      ? "fairness on kubernetes: there is no Kubernetes backend in this checkout"
      : !env
      ? "fairness on kubernetes: no cluster or no GCS emulator"
      : undefined,
    sample: async (durations) => {
      const { cluster, emulator } = env!;
      const namespace = `kf-bench-fair-${crypto.randomUUID().slice(0, 6)}`;
      await kubectl(cluster, ["create", "namespace", namespace]);
      try {
        const storage = `gs://${await newBucket(emulator, "kf-bench-fair")}/runs/`;
        const { report } = await runDriver({
          module: benchModule("sleep.ts"),
          inputs: durations,
          storage,
          backend: "kubernetes",
          kubernetes: { kubeconfig: cluster.kubeconfig, namespace },
          parallelism: PARALLELISM,
        }, { env: { STORAGE_EMULATOR_HOST: emulator.url } });
        Deno.env.set("STORAGE_EMULATOR_HOST", emulator.url);
        const headers = (await resultHeaders(storage, report.job)).filter((h) => h.status === "ok");
        return summarize(headers, report.readyAt);
      } finally {
        await kubectl(cluster, ["delete", "namespace", namespace, "--wait=false"]).catch(() => "");
      }
    },
  };
}

/** What the Kubernetes mode needs. */
interface KubernetesEnv {
  cluster: BenchCluster;
  emulator: Emulator;
}

async function run(context: BenchContext): Promise<BenchResult> {
  const n = context.quick ? 12 : 40;
  const random = seededRandom(SEED);
  const durations = Array.from({ length: n }, () => Math.round(200 + random() * 1800));
  const work = durations.reduce((a, b) => a + b, 0);
  const ideal = listScheduleMakespan(durations, PARALLELISM);
  const idealIdle = PARALLELISM * ideal - work;
  const emulatorStarted = await benchEmulator();
  const clusterStarted = emulatorStarted.ok ? await benchCluster(context.log) : undefined;
  await using emulator = emulatorStarted.ok ? emulatorStarted.emulator : undefined;
  await using cluster = clusterStarted?.ok ? clusterStarted.cluster : undefined;
  const modes = [
    localMode(false),
    localMode(true),
    kubernetesMode(cluster && emulator ? { cluster, emulator } : undefined),
  ];
  const skipped = modes.flatMap((m) => (m.skip ? [m.skip] : []));
  const active = modes.filter((m) => !m.skip);
  const samples = new Map<Mode, Sample[]>(active.map((m) => [m, []]));
  for (let r = 1; r <= context.runs; r++) {
    for (const mode of active) {
      context.log(`run ${r}/${context.runs}: ${mode.backend}, ${mode.mode}`);
      const s = await mode.sample(durations);
      context.log(`  idle ${fixed((100 * s.idleMs) / (PARALLELISM * s.wallMs), 1)} %`);
      samples.get(mode)!.push(s);
    }
  }
  const rows = active.map((mode) => {
    const med = (f: (s: Sample) => number) => median(samples.get(mode)!.map(f));
    const wall = med((s) => s.wallMs);
    return [
      mode.backend,
      mode.mode,
      String(PARALLELISM),
      String(n),
      String(samples.get(mode)!.length),
      fixed(wall / 1000, 2),
      fixed(ideal / 1000, 2),
      `${fixed(med((s) => (100 * s.idleMs) / (PARALLELISM * s.wallMs)), 1)} %`,
      `${fixed((100 * idealIdle) / (PARALLELISM * ideal), 1)} %`,
      fixed(med((s) => (s.idleMs - idealIdle) / n), 0),
      fixed(med((s) => s.firstStartMs), 0),
      String(med((s) => s.results - n)),
    ];
  });
  const table: Table = {
    title: `Scheduling fairness: ${n} tasks of random length on ${PARALLELISM} slots`,
    columns: [
      "Backend",
      "Mode",
      "P",
      "Tasks",
      "Runs",
      "Wall s",
      "Ideal makespan s",
      "Idle fraction",
      "Ideal idle fraction",
      "Excess idle ms/task",
      "First task start ms",
      "Extra results (speculation)",
    ],
    rows,
    notes: [
      `Task lengths: ${n} sleeps drawn uniformly from 200 to 2000 ms (seed ${SEED}), ${
        fixed(work / 1000, 1)
      } s of work in all; the same lengths in every run.`,
      "Wall runs from the moment the job is ready to be submitted (module bundled, inputs uploaded) to the last task's end, both on the machine's clock; running tasks come from the start and end times the workers wrote in their result headers, so process start-up counts as idle.",
      "Idle fraction = ∫ (P − running) dt / (P × wall). The ideal is greedy list scheduling of the same lengths in input order with zero overhead: its idle is only the tail, when fewer than P tasks are left.",
      "Excess idle ms/task = (measured idle − ideal idle) / tasks: the slot time lost per task to starting it, reporting it and starting the next. Kubeface's default speculation stays on; an extra result is a speculative copy that finished. First task start: from job ready to the first task's own start time (start-up of the first worker).",
    ],
  };
  return { tables: [table], skipped };
}

/** Benchmark 5: idle capacity with random task lengths. */
export const fairness: Benchmark = {
  name: "fairness",
  description: "idle slot time with random task lengths, from the workers' own records",
  run,
};

if (import.meta.main) await main(fairness, join("bench", "fairness.ts"));
