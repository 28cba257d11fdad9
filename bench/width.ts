/**
 * Benchmark width: one wide map (10,000 tasks; `--quick`: 1,000) on a pool of KWOK nodes (1,000;
 * `--quick`: 100) against the real control plane, twice in one run: with kube-controller-manager
 * at Kubernetes' default client rate (20 requests/s, burst 30) and raised (200, burst 400). Each
 * runs on a cluster of its own (`up({ kwokNodes, controllerQps })`), stopped afterwards. Reports
 * the master's API requests (the apiserver's audit log, by user) per Job and per task, its peak
 * RSS and CPU per task, the time to every pod Running and to the last result beside the floor the
 * controller's rate sets (about 2 requests per task: a pod create and a finalizer patch), the
 * status pages' sizes and the time of `kubeface status` and `kubeface jobs`.
 *
 * ```sh
 * deno task bench width                                  # 10,000 tasks, 1,000 nodes (~40 min)
 * KUBEFACE_BENCH_WIDTH_TASKS=100000 deno task bench width # the 100,000-task run (opt-in)
 * KUBEFACE_BENCH_WIDTH_TASKS=1000 KUBEFACE_BENCH_WIDTH_NODES=100 deno task bench width
 * ```
 *
 * @module
 */

import type { BenchContext, Benchmark, BenchResult } from "./support/bench.ts";
import { main } from "./support/bench.ts";
import { down, up } from "../tests/infra/cluster/cluster.ts";
import { runWidth, type WidthReport } from "../tests/support/width.ts";
import type { Table } from "./support/table.ts";

/** The controller-manager's client rates compared: Kubernetes' default, and raised. */
const RATES = [20, 200];

function seconds(ms: number): string {
  return Number.isFinite(ms) ? (ms / 1000).toFixed(1) : "–";
}

async function run(context: BenchContext): Promise<BenchResult> {
  const tasks = Number(
    Deno.env.get("KUBEFACE_BENCH_WIDTH_TASKS") ?? (context.quick ? 1_000 : 10_000),
  );
  const nodes = Number(Deno.env.get("KUBEFACE_BENCH_WIDTH_NODES") ?? (context.quick ? 100 : 1_000));
  const reports: { qps: number; report: WidthReport; upMs: number }[] = [];
  const skipped: string[] = [];
  for (const qps of RATES) {
    const dir = await Deno.makeTempDir({ prefix: `kubeface-bench-width-${qps}-` });
    try {
      const started = performance.now();
      context.log(`starting a cluster with ${nodes} KWOK nodes, controller-manager at ${qps} QPS`);
      await up({ dir, kwokNodes: nodes, controllerQps: qps, onProgress: context.log });
      const upMs = performance.now() - started;
      const report = await runWidth({ dir, tasks, nodes, log: context.log });
      reports.push({ qps, report, upMs });
    } catch (error) {
      skipped.push(`width at ${qps} QPS: ${(error as Error).message}`);
    } finally {
      await down({ dir });
    }
  }
  const table: Table = {
    title: `A ${
      tasks.toLocaleString("en")
    }-task map on ${nodes} KWOK nodes, master as the RBAC user`,
    columns: [
      "controller QPS",
      "Jobs",
      "master requests (watches)",
      "per Job",
      "per task",
      "master peak RSS",
      "master CPU / task",
      "all pods Running",
      "last result",
      "floor 2·tasks/QPS",
      "status.json / .html",
      "`kubeface status` / `jobs`",
      "one result per task",
    ],
    rows: reports.map(({ qps, report: r }) => {
      const other = r.totalRequests - r.watchRequests;
      return [
        String(qps),
        String(r.jobs),
        `${r.totalRequests} (${r.watchRequests})`,
        (other / Math.max(1, r.jobs)).toFixed(1),
        (other / r.tasks).toFixed(4),
        `${(r.master.vmHwmBytes / 2 ** 20).toFixed(0)} MiB`,
        `${(r.master.selfCpuMs / r.tasks).toFixed(2)} ms`,
        `${seconds(r.allPodsRunningMs)} s`,
        `${seconds(r.lastResultMs)} s`,
        `${((2 * r.tasks) / qps).toFixed(0)} s`,
        `${(r.statusJsonBytes / 1024).toFixed(0)} / ${(r.statusHtmlBytes / 1024).toFixed(0)} KiB`,
        `${r.statusCliMs.toFixed(0)} / ${r.jobsCliMs.toFixed(0)} ms`,
        `${r.tasksWithOneResult} of ${r.tasks}`,
      ];
    }),
    notes: [
      "Requests are those of the master's user in the apiserver's audit log; watches end after 60–90 s and are made again, so they grow with time, not tasks. The rest is a dry run, a create per Job, and informer lists.",
      "Pods run no code (KWOK); tests/infra/kwok_results.ts stores each result through lib's record code before the pod may succeed.",
      "The floor: the Job controller makes about two requests per task (a pod create, a finalizer patch) at the controller-manager's QPS.",
      ...reports.map(({ qps, report: r }) =>
        `${qps} QPS: requests ${JSON.stringify(r.requests)}; master ready after ${
          seconds(r.master.readyMs)
        } s (bundle, ${r.tasks} inputs uploaded)`
      ),
    ],
  };
  return { tables: [table], skipped };
}

/** The width benchmark. */
export const width: Benchmark = {
  name: "width",
  description:
    "10,000 tasks on 1,000 KWOK nodes at default and raised controller QPS: API requests, RSS, times",
  run,
};

if (import.meta.main) await main(width, "bench/width.ts");
