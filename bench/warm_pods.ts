/**
 * Benchmark 8, warm pods: the same tasks on the test cluster's real node
 * with a pod per task and with warm pods (`kubernetes: { warm: true }`),
 * side by side in one run: wall time, idle fraction and excess idle per
 * task (from the workers' own start and end records), kube-apiserver
 * requests per task (counted by the apiserver, `/metrics`), and storage
 * requests per task (counted by a proxy in front of the GCS emulator that
 * the master and every pod go through), by operation.
 *
 * ```sh
 * deno task bench warm-pods            # 500 tasks of 1 s at parallelism 8
 * deno task bench warm-pods --quick    # 48 tasks
 * ```
 *
 * @module
 */

import { join } from "node:path";
import type { BenchContext, Benchmark, BenchResult } from "./support/bench.ts";
import { main } from "./support/bench.ts";
import { idleSlotTime, listScheduleMakespan } from "./support/idle.ts";
import { benchModule, hasKubernetesBackend, runDriver } from "./support/kubeface.ts";
import { apiRequestCount, type BenchCluster, benchCluster, kubectl } from "./support/cluster.ts";
import { benchEmulator, newBucket } from "./support/emulator.ts";
import { resultHeaders } from "../tests/support/jobs.ts";
import { startFaultyProxy } from "../tests/infra/faulty_proxy.ts";
import type { Emulator } from "../tests/infra/gcs_emulator.ts";
import { fixed, median } from "./support/stats.ts";
import type { Table } from "./support/table.ts";

const PARALLELISM = 8;
const TASK_MS = 1000;

interface Sample {
  wallMs: number;
  idleMs: number;
  results: number;
  /** apiserver requests during the run, the idle cluster's background subtracted. */
  apiRequests: number;
  /** Storage requests during the run (preparation included), by operation. */
  storage: Record<string, number>;
  /** Storage requests of the warm-pod protocol (keys under `warm/`). */
  protocol: number;
}

/** The apiserver's background request rate (leases, node status), per millisecond. */
async function backgroundRate(cluster: BenchCluster): Promise<number> {
  const before = await apiRequestCount(cluster);
  const start = Date.now();
  await new Promise((resolve) => setTimeout(resolve, 10_000));
  const after = await apiRequestCount(cluster);
  // One reading's own request is in the difference.
  return (after - before - 1) / (Date.now() - start);
}

async function sample(
  cluster: BenchCluster,
  emulator: Emulator,
  background: number,
  tasks: number,
  warm: boolean,
): Promise<Sample> {
  await using proxy = startFaultyProxy({ upstream: emulator.url });
  const namespace = `kf-bench-warm-${crypto.randomUUID().slice(0, 6)}`;
  await kubectl(cluster, ["create", "namespace", namespace]);
  const account = ["get", "-n", namespace, "serviceaccount", "default"];
  for (let i = 0; i < 600 && !(await kubectl(cluster, account).catch(() => "")); i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  try {
    const storage = `gs://${await newBucket(emulator, "kf-bench-warm")}/runs/`;
    const before = await apiRequestCount(cluster);
    const seen = proxy.requests.length;
    const started = Date.now();
    const { report } = await runDriver({
      module: benchModule("sleep.ts"),
      inputs: Array(tasks).fill(TASK_MS),
      storage,
      backend: "kubernetes",
      kubernetes: {
        kubeconfig: cluster.kubeconfig,
        namespace,
        imagePullPolicy: "Never",
        cpu: "100m",
        podTemplatePatch: { spec: { hostNetwork: true } },
        ...(warm ? { warm: true } : {}),
      },
      parallelism: PARALLELISM,
      speculation: false,
    }, { env: { STORAGE_EMULATOR_HOST: proxy.url } });
    const apiRequests = await apiRequestCount(cluster) - before - 1 -
      background * (Date.now() - started);
    const requests = proxy.requests.slice(seen);
    const byOperation: Record<string, number> = {};
    for (const r of requests) {
      const op = r.operation ?? "other";
      byOperation[op] = (byOperation[op] ?? 0) + 1;
    }
    const protocol = requests.filter((r) =>
      /warm(%2F|\/)/.test(r.target) || /prefix=[^&]*warm/.test(r.target)
    )
      .length;
    Deno.env.set("STORAGE_EMULATOR_HOST", emulator.url);
    const headers = (await resultHeaders(storage, report.job)).filter((h) => h.status === "ok");
    const intervals = headers.map((h) => ({
      start: Date.parse(h.startedAt),
      end: Date.parse(h.endedAt),
    }));
    const to = Math.max(...intervals.map((i) => i.end));
    return {
      wallMs: to - report.readyAt,
      idleMs: idleSlotTime(intervals, PARALLELISM, report.readyAt, to),
      results: headers.length,
      apiRequests,
      storage: byOperation,
      protocol,
    };
  } finally {
    await kubectl(cluster, ["delete", "namespace", namespace, "--wait=false"]).catch(() => "");
  }
}

async function run(context: BenchContext): Promise<BenchResult> {
  const tasks = context.quick ? 48 : 500;
  if (!hasKubernetesBackend()) return { tables: [], skipped: ["warm-pods: no Kubernetes backend"] };
  const emulatorStarted = await benchEmulator();
  if (!emulatorStarted.ok) return { tables: [], skipped: [`warm-pods: ${emulatorStarted.reason}`] };
  await using emulator = emulatorStarted.emulator;
  const clusterStarted = await benchCluster(context.log);
  if (!clusterStarted.ok) return { tables: [], skipped: [`warm-pods: ${clusterStarted.reason}`] };
  await using cluster = clusterStarted.cluster;
  const background = await backgroundRate(cluster);
  context.log(`apiserver background: ${fixed(background * 1000, 1)} requests/s`);
  const modes = [{ name: "warm pods (--warm)", warm: true }, { name: "pod per task", warm: false }];
  const samples = new Map(modes.map((m) => [m.name, [] as Sample[]]));
  for (let r = 1; r <= context.runs; r++) {
    for (const mode of modes) {
      context.log(`run ${r}/${context.runs}: ${mode.name}, ${tasks} tasks`);
      const s = await sample(cluster, emulator, background, tasks, mode.warm);
      context.log(
        `  wall ${fixed(s.wallMs / 1000, 1)} s, idle ${
          fixed((100 * s.idleMs) / (PARALLELISM * s.wallMs), 1)
        } %, ${fixed(s.apiRequests / tasks, 2)} API requests/task, storage ${
          JSON.stringify(s.storage)
        }`,
      );
      samples.get(mode.name)!.push(s);
    }
  }
  const ideal = listScheduleMakespan(Array(tasks).fill(TASK_MS), PARALLELISM);
  const idealIdle = PARALLELISM * ideal - tasks * TASK_MS;
  const ops = [
    "storage.objects.insert",
    "storage.objects.get",
    "storage.objects.list",
    "storage.objects.delete",
  ];
  const rows = modes.map((mode) => {
    const list = samples.get(mode.name)!;
    const med = (f: (s: Sample) => number) => median(list.map(f));
    const wall = med((s) => s.wallMs);
    const storageTotal = med((s) => Object.values(s.storage).reduce((a, b) => a + b, 0));
    return [
      mode.name,
      String(PARALLELISM),
      String(tasks),
      String(list.length),
      fixed(wall / 1000, 1),
      fixed(ideal / 1000, 1),
      `${fixed(med((s) => (100 * s.idleMs) / (PARALLELISM * s.wallMs)), 1)} %`,
      fixed(med((s) => (s.idleMs - idealIdle) / tasks), 0),
      fixed(tasks / (wall / 1000), 2),
      fixed(med((s) => s.apiRequests / tasks), 2),
      fixed(storageTotal / tasks, 2),
      ...ops.map((op) => fixed(med((s) => (s.storage[op] ?? 0) / tasks), 2)),
      fixed(med((s) => s.protocol / tasks), 2),
      String(med((s) => s.results - tasks)),
    ];
  });
  const table: Table = {
    title: `Warm pods: ${tasks} tasks of ${
      TASK_MS / 1000
    } s at parallelism ${PARALLELISM} on the real node`,
    columns: [
      "Mode",
      "P",
      "Tasks",
      "Runs",
      "Wall s",
      "Ideal s",
      "Idle fraction",
      "Excess idle ms/task",
      "Tasks/s",
      "apiserver requests/task",
      "Storage requests/task",
      "insert/task",
      "get/task",
      "list/task",
      "delete/task",
      "warm/ requests/task",
      "Extra results",
    ],
    rows,
    notes: [
      "Pods run in containers under the test cluster's kubelet (containerd, runc) with the host's network, the stock Deno image (bootstrap from storage), CPU request 100m, images imported (pull policy Never); storage is the GCS emulator on loopback behind a counting proxy that the master and every pod use. Speculation off.",
      "Wall: from the job ready to be submitted (module bundled, inputs uploaded) to the last task's end. Idle fraction = ∫ (P − running) dt / (P × wall), from the start and end times in the result records; excess idle ms/task = (idle − ideal idle) / tasks, the ideal being zero overhead.",
      `apiserver requests/task: the difference of \`apiserver_request_total\` (every client: master, controllers, scheduler, kubelet) over the run, minus the idle cluster's background rate (${
        fixed(background * 1000, 1)
      } requests/s, measured for 10 s before), divided by the tasks.`,
      "Storage requests/task: every request through the proxy during the run, preparation included (bundle, runtime, one input per task, manifest, status pages), by JSON API operation (get counts metadata reads and downloads); warm/ requests: those on the warm-pod protocol's objects (offers, claims, ends, stops, listings of them).",
    ],
  };
  return { tables: [table], skipped: [] };
}

/** Benchmark 8: warm pods against a pod per task. */
export const warmPods: Benchmark = {
  name: "warm-pods",
  description: "pod per task vs warm pods on the real node: wall, idle, API and storage requests",
  run,
};

if (import.meta.main) await main(warmPods, join("bench", "warm_pods.ts"));
