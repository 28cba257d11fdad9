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
 * KUBEFACE_BENCH_WIDTH_QPS=200 deno task bench width      # only the raised rate
 * KUBEFACE_BENCH_WIDTH_DISRUPT=1 deno task bench width    # with disruptions mid-map
 * KUBEFACE_BENCH_WIDTH_PARALLELISM=10000 deno task bench width # at most 10,000 pods at once
 * KUBEFACE_BENCH_WIDTH_POD_GC_THRESHOLD=100000 deno task bench width # PodGC keeps 100,000
 * ```
 *
 * `KUBEFACE_BENCH_WIDTH_POD_GC_THRESHOLD` sets kube-controller-manager's
 * `--terminated-pod-gc-threshold` (default 12,500): the pod garbage collector deletes the oldest
 * Succeeded and Failed pods beyond it every 20 s.
 *
 * With `KUBEFACE_BENCH_WIDTH_DISRUPT=1`, once 30 % of the results are stored, 10 % of the nodes
 * are deleted, 2 % drained with a `NoExecute` taint and 1 % of the tasks' pods evicted through
 * the Eviction API (the map runs with `maxRetries: 0`); a second table reports what became of
 * them and how soon each disrupted task ran again.
 *
 * @module
 */

import type { BenchContext, Benchmark, BenchResult } from "./support/bench.ts";
import { main } from "./support/bench.ts";
import { down, up } from "../tests/infra/cluster/cluster.ts";
import { runWidthInSubprocess, type WidthReport } from "../tests/support/width.ts";
import type { Table } from "./support/table.ts";

/**
 * The controller-manager's client rates compared: Kubernetes' default, and raised
 * (`KUBEFACE_BENCH_WIDTH_QPS`, comma-separated, runs only those).
 */
function rates(): number[] {
  const list = Deno.env.get("KUBEFACE_BENCH_WIDTH_QPS");
  if (!list) return [20, 200];
  const values = list.split(",").map(Number);
  if (values.some((qps) => !(qps > 0))) {
    throw new Error(
      `KUBEFACE_BENCH_WIDTH_QPS must list positive numbers, like 20,200; got ${list}`,
    );
  }
  return values;
}

/** `KUBEFACE_BENCH_WIDTH_<name>`, a positive integer, or `fallback` when unset. */
function count(name: string, fallback: number): number {
  const text = Deno.env.get(`KUBEFACE_BENCH_WIDTH_${name}`);
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) {
    throw new Error(
      `KUBEFACE_BENCH_WIDTH_${name} must be a positive integer, like 10000; got ${text}`,
    );
  }
  return value;
}

function seconds(ms: number): string {
  return Number.isFinite(ms) ? (ms / 1000).toFixed(1) : "–";
}

async function run(context: BenchContext): Promise<BenchResult> {
  const tasks = count("TASKS", context.quick ? 1_000 : 10_000);
  const nodes = count("NODES", context.quick ? 100 : 1_000);
  const parallelism = count("PARALLELISM", tasks);
  // Unset: Kubernetes' default (12,500), and the table's title says nothing of it.
  const podGc = Deno.env.has("KUBEFACE_BENCH_WIDTH_POD_GC_THRESHOLD")
    ? count("POD_GC_THRESHOLD", 0)
    : undefined;
  const disrupt = Deno.env.get("KUBEFACE_BENCH_WIDTH_DISRUPT") === "1"
    ? {
      after: 0.3,
      deleteNodes: 0.1,
      taintNodes: Math.max(1, Math.round(nodes / 50)),
      evictPods: Math.max(1, Math.round(tasks / 100)),
    }
    : undefined;
  const reports: { qps: number; report: WidthReport; upMs: number }[] = [];
  const skipped: string[] = [];
  for (const qps of rates()) {
    const dir = await Deno.makeTempDir({ prefix: `kubeface-bench-width-${qps}-` });
    try {
      const started = performance.now();
      context.log(`starting a cluster with ${nodes} KWOK nodes, controller-manager at ${qps} QPS`);
      await up({
        dir,
        kwokNodes: nodes,
        controllerQps: qps,
        terminatedPodGcThreshold: podGc,
        onProgress: context.log,
      });
      const upMs = performance.now() - started;
      const report = await runWidthInSubprocess({
        dir,
        tasks,
        nodes,
        parallelism,
        disrupt,
        log: context.log,
      });
      reports.push({ qps, report, upMs });
    } catch (error) {
      skipped.push(`width at ${qps} QPS: ${(error as Error).message}`);
    } finally {
      await down({ dir });
    }
  }
  const table: Table = {
    title: `A ${tasks.toLocaleString("en")}-task map${
      parallelism < tasks ? ` (parallelism ${parallelism.toLocaleString("en")})` : ""
    } on ${nodes} KWOK nodes, master as the RBAC user${
      podGc === undefined ? "" : `, pod GC threshold ${podGc.toLocaleString("en")}`
    }`,
    columns: [
      "controller QPS",
      "Jobs",
      "master requests (watches)",
      "per Job",
      "per task",
      "master peak RSS",
      "live heap at 90 %",
      "master CPU / task",
      "all pods Running",
      "last result stored / at the master",
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
        `${((r.master.liveHeapBytes ?? NaN) / 2 ** 20).toFixed(0)} MiB`,
        `${(r.master.selfCpuMs / r.tasks).toFixed(2)} ms`,
        `${seconds(r.allPodsRunningMs)} s`,
        `${seconds(r.lastStoredMs)} / ${seconds(r.lastResultMs)} s`,
        `${((2 * r.tasks) / qps).toFixed(0)} s`,
        `${(r.statusJsonBytes / 1024).toFixed(0)} / ${(r.statusHtmlBytes / 1024).toFixed(0)} KiB`,
        `${r.statusCliMs.toFixed(0)} / ${r.jobsCliMs.toFixed(0)} ms`,
        `${r.tasksWithOneResult} of ${r.tasks}`,
      ];
    }),
    notes: [
      "Requests are those of the master's user in the apiserver's audit log. A watch ends after 60–90 s and resumes from its resourceVersion; on a CPU-starved apiserver (2 cores here) it also ends whenever its 10-event buffer stays full, as the scheduler's, the controller-manager's and kwok's pod watches do too ('Forcing pods watcher close due to unresponsiveness' at -v=3): watches grow with time and load, not tasks. The rest is a dry run, a create per Job, and informer lists (a list again only after a 410).",
      "Pods run no code (KWOK); tests/infra/kwok_results.ts stores each result through lib's record code before the pod may succeed.",
      "Peak RSS is the master's high-water mark (VmHWM): V8 collects lazily, so it holds garbage and native buffers too. The live heap is the V8 heap used right after a full collection (gc()) when 90 % of the results had arrived, informers and status still complete.",
      "The last result is stored by the KWOK result writer; the master learns of it from the pod's end (its watch), after kwok has marked the pod Succeeded.",
      "The floor: the Job controller makes about two requests per task (a pod create, a finalizer patch) at the controller-manager's QPS.",
      ...reports.map(({ qps, report: r }) =>
        `${qps} QPS: requests ${JSON.stringify(r.requests)}; master ready after ${
          seconds(r.master.readyMs)
        } s (bundle, ${r.tasks} inputs uploaded)`
      ),
    ],
  };
  const disruptions: Table = {
    title: `Disruptions in the middle of the ${tasks.toLocaleString("en")}-task map`,
    columns: [
      "controller QPS",
      "nodes deleted / drained",
      "pods evicted",
      "done before",
      "attempts disrupted",
      "counted as failures",
      "finished tasks run again",
      "tasks with one result",
      "seen only deleted",
      "next attempt submitted after (median / max)",
      "next attempt started after (median / max)",
      "Jobs",
    ],
    rows: reports.flatMap(({ qps, report: r }) => {
      const d = r.disruption;
      if (!d) return [];
      return [[
        String(qps),
        `${d.nodesDeleted} / ${d.nodesTainted}`,
        String(d.podsEvicted),
        String(d.finishedBefore),
        String(d.disruptedAttempts),
        String(d.failedAttempts),
        String(d.recomputed),
        `${r.tasksWithOneResult} of ${r.tasks}`,
        String(d.seenOnlyDeleted),
        `${d.resubmitted.medianS.toFixed(2)} / ${d.resubmitted.maxS.toFixed(2)} s`,
        `${d.replacement.medianS.toFixed(2)} / ${
          d.replacement.maxS.toFixed(2)
        } s (${d.replacement.measured})`,
        String(r.jobs),
      ]];
    }),
    notes: [
      "Deleted nodes' workers die with them (the result writer stores nothing more for their pods); their pods stay Running in the API until the pod garbage collector fails them (DisruptionTarget, about a minute). The map runs with maxRetries 0: a disruption counted against the retries would fail it.",
      "The next attempt's delay runs from the disrupted attempt's end, as the master saw it, to the next attempt's submission (a new Kubernetes Job) and start (its pod Running; status.json); a disruption seen only as a deleted pod is one whose end the master's watch missed (it was re-made in between), known from the Job's failed index; Kubernetes' own replacement waits its 10 s failure backoff (kubernetes#130881).",
    ],
  };
  return { tables: disrupt ? [table, disruptions] : [table], skipped };
}

/** The width benchmark. */
export const width: Benchmark = {
  name: "width",
  description:
    "10,000 tasks on 1,000 KWOK nodes at default and raised controller QPS: API requests, RSS, times",
  run,
};

if (import.meta.main) await main(width, "bench/width.ts");
