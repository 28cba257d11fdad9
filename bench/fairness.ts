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
import { benchCluster } from "./support/cluster.ts";
import { benchEmulator } from "./support/emulator.ts";
import { resultHeaders } from "../tests/support/jobs.ts";
import {
  barePods,
  kubefacePods,
  type PodEnv,
  type PodRun,
  STOCK_IMAGE,
} from "./support/pod_fairness.ts";
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
  /** Median over the pods of the time from a pod's creation to its task's start. */
  createdToStartMs?: number;
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

function podSample(run: PodRun): Sample {
  return {
    ...summarize(
      run.intervals.map((i) => ({
        startedAt: new Date(i.start).toISOString(),
        endedAt: new Date(i.end).toISOString(),
      })),
      run.readyAt,
    ),
    createdToStartMs: median(run.createdToStartMs),
  };
}

/** The same tasks as pods on the test cluster's real node, with the GCS emulator as storage. */
function podModes(env: PodEnv | undefined, reason: string | undefined): Mode[] {
  const skip = (what: string, image?: boolean) =>
    !hasKubernetesBackend()
      ? `fairness, ${what}: there is no Kubernetes backend in this checkout`
      : !env
      ? `fairness, ${what}: ${reason ?? "no cluster or no GCS emulator"}`
      : image && !env.workerImage
      ? `fairness, ${what}: the worker image could not be built`
      : undefined;
  const stock = `stock image ${STOCK_IMAGE}`;
  return [
    {
      backend: "kubernetes",
      mode: `kubeface, ${stock} (bootstrap)`,
      skip: skip("kubeface on pods"),
      sample: async (d) => podSample(await kubefacePods(env!, d, PARALLELISM, false)),
    },
    {
      backend: "kubernetes",
      mode: "kubeface, worker image (--worker-image)",
      skip: skip("kubeface on pods, worker image", true),
      sample: async (d) => podSample(await kubefacePods(env!, d, PARALLELISM, true)),
    },
    {
      backend: "bare Indexed Job",
      mode: `${stock}: deno eval sleeping the same lengths`,
      skip: skip("bare pods"),
      sample: async (d) => podSample(await barePods(env!, d, PARALLELISM, STOCK_IMAGE)),
    },
    {
      backend: "bare Indexed Job",
      mode: "worker image: deno eval sleeping the same lengths",
      skip: skip("bare pods, worker image", true),
      sample: async (d) => podSample(await barePods(env!, d, PARALLELISM, env!.workerImage!)),
    },
  ];
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
  const reason = !emulatorStarted.ok
    ? emulatorStarted.reason
    : clusterStarted && !clusterStarted.ok
    ? clusterStarted.reason
    : undefined;
  const modes = [
    localMode(false),
    localMode(true),
    ...podModes(
      cluster && emulator ? { cluster, emulator, workerImage: cluster.workerImage } : undefined,
      reason,
    ),
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
      mode.backend === "local" ? "—" : fixed(med((s) => s.createdToStartMs ?? NaN), 0),
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
      "Pod created → task start ms",
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
      "Pods run in containers under the test cluster's kubelet (containerd 2.4.2, runc) with the host's network, images imported (pull policy Never), storage the GCS emulator on loopback. Bare Indexed Job: the same image, P pods at a time, pod i runs `deno eval` that reads the clock, sleeps length i and reads it again (no kubeface; its wall runs from the Job's creation). Pod created → task start: median over the pods of the time from when a watch on the namespace saw the pod to the task's start (kubeface: the start time in its result; bare: the pod's first clock reading).",
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
