/**
 * Benchmark 4, submission: 10,000 tasks submitted to the test cluster's
 * kube-apiserver with their inputs uploaded to the GCS emulator, against the
 * original kubeface's method on the same cluster and emulator (one upload
 * and one `kubectl create` of a bare pod per task, timed on a sample and
 * extrapolated). Reports API calls made and wall time.
 *
 * ```sh
 * deno task bench submission
 * ```
 *
 * @module
 */

import { join } from "node:path";
import type { BenchContext, Benchmark, BenchResult } from "./support/bench.ts";
import { main } from "./support/bench.ts";
import type { OriginalReport, OriginalSpec } from "./drivers/original_submit.ts";
import type { SubmitReport, SubmitSpec } from "./drivers/submit_driver.ts";
import { benchCacheDir } from "./support/alternatives.ts";
import { apiRequestCount, type BenchCluster, benchCluster, kubectl } from "./support/cluster.ts";
import { benchEmulator, newBucket } from "./support/emulator.ts";
import { benchModule, hasKubernetesBackend, REPO } from "./support/kubeface.ts";
import { lastJson, measure } from "./support/process.ts";
import { fixed, median, ratio } from "./support/stats.ts";
import type { Table } from "./support/table.ts";

interface Sample {
  /** Tasks actually submitted in this sample. */
  measured: number;
  uploadMs: number;
  createMs: number;
  /** Wall time of the whole submission as measured (not extrapolated). */
  wallMs: number;
  /** API calls as the client reported them, if it can. */
  clientCalls?: number;
  /** apiserver_request_total difference over the sample, minus the idle background. */
  serverCalls?: number;
}

interface Method {
  label: string;
  measured: number;
  skip?: string;
  sample(): Promise<Sample>;
}

async function driver<T>(file: string, spec: unknown, env: Record<string, string>): Promise<T> {
  const m = await measure(Deno.execPath(), [
    "run",
    "-A",
    `--config=${join(REPO, "deno.json")}`,
    join(REPO, "bench", "drivers", file),
    JSON.stringify(spec),
  ], { cwd: REPO, env });
  return lastJson<T>(m, file);
}

/** Requests per second the apiserver serves with nothing of ours running. */
async function backgroundRate(cluster: BenchCluster, seconds: number): Promise<number> {
  const before = await apiRequestCount(cluster);
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  const after = await apiRequestCount(cluster);
  return (after - before - 1) / seconds; // one of them is the reading itself
}

async function withNamespace<T>(cluster: BenchCluster, fn: (ns: string) => Promise<T>) {
  const ns = `kf-bench-${crypto.randomUUID().slice(0, 8)}`;
  await kubectl(cluster, ["create", "namespace", ns]);
  // Pods need the namespace's default ServiceAccount.
  for (let i = 0; i < 100; i++) {
    try {
      await kubectl(cluster, ["get", "serviceaccount", "default", "-n", ns]);
      break;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  try {
    return await fn(ns);
  } finally {
    await kubectl(cluster, ["delete", "namespace", ns, "--wait=false"]).catch(() => "");
  }
}

async function run(context: BenchContext): Promise<BenchResult> {
  const tasks = context.quick ? 500 : 10_000;
  const sample = context.quick ? 50 : 200;
  const skipped: string[] = [];
  const emulatorStarted = await benchEmulator();
  if (!emulatorStarted.ok) {
    return { tables: [], skipped: [`submission: ${emulatorStarted.reason}`] };
  }
  await using emulator = emulatorStarted.emulator;
  const env = { STORAGE_EMULATOR_HOST: emulator.url };
  const clusterStarted = await benchCluster(context.log);
  if (!clusterStarted.ok) skipped.push(`submission to the cluster: ${clusterStarted.reason}`);
  await using cluster = clusterStarted.ok ? clusterStarted.cluster : undefined;
  const rate = cluster ? await backgroundRate(cluster, 5) : 0;
  context.log(`apiserver background: ${fixed(rate, 2)} requests/s`);

  const serverCalls = async <T extends { wallMs: number }>(fn: () => Promise<T>) => {
    if (!cluster) return { ...(await fn()), serverCalls: undefined };
    const before = await apiRequestCount(cluster);
    const result = await fn();
    const after = await apiRequestCount(cluster);
    return {
      ...result,
      serverCalls: Math.max(0, after - before - 1 - rate * (result.wallMs / 1000)),
    };
  };

  const methods: Method[] = [
    {
      label: "original: per task, upload its input, then `kubectl create` a bare pod",
      measured: sample,
      skip: cluster ? undefined : "original method: no cluster",
      sample: () =>
        withNamespace(cluster!, (namespace) =>
          serverCalls(async () => {
            const started = performance.now();
            const spec: OriginalSpec = {
              count: sample,
              bucket: await newBucket(emulator, "kf-bench-orig"),
              namespace,
              kubeconfig: cluster!.kubeconfig,
              kubectl: cluster!.kubectl,
              cacheDir: join(benchCacheDir(), "kubectl-cache"),
            };
            const r = await driver<OriginalReport>("original_submit.ts", spec, env);
            return {
              measured: r.created,
              uploadMs: r.uploadMs,
              createMs: r.kubectlMs,
              wallMs: performance.now() - started,
              clientCalls: r.apiCalls,
            };
          })),
    },
    {
      label:
        "kubeface: inputs uploaded (bounded pool), tasks accepted by a backend that does nothing",
      measured: tasks,
      sample: () =>
        serverCalls(async () => {
          const started = performance.now();
          const spec: SubmitSpec = {
            module: benchModule("square.ts"),
            count: tasks,
            storage: `gs://${await newBucket(emulator, "kf-bench-sub")}/runs/`,
            backend: "null",
          };
          const r = await driver<SubmitReport>("submit_driver.ts", spec, env);
          return {
            measured: r.submitted,
            uploadMs: r.readyMs - r.openMs,
            createMs: r.openMs + r.submitMs,
            wallMs: performance.now() - started,
            clientCalls: 0,
          };
        }),
    },
    {
      label: "kubeface `--backend kubernetes`: inputs uploaded, one Indexed Job created",
      measured: tasks,
      skip: !cluster
        ? "kubeface --backend kubernetes: no cluster"
        : hasKubernetesBackend()
        ? undefined
        : "kubeface --backend kubernetes: there is no Kubernetes backend in this checkout",
      sample: () =>
        withNamespace(cluster!, (namespace) =>
          serverCalls(async () => {
            const started = performance.now();
            const spec: SubmitSpec = {
              module: benchModule("square.ts"),
              count: tasks,
              storage: `gs://${await newBucket(emulator, "kf-bench-k8s")}/runs/`,
              backend: "kubernetes",
              clientOptions: { kubernetes: { kubeconfig: cluster!.kubeconfig, namespace } },
            };
            const r = await driver<SubmitReport>("submit_driver.ts", spec, env);
            return {
              measured: r.submitted,
              uploadMs: r.readyMs - r.openMs,
              createMs: r.openMs + r.submitMs,
              wallMs: performance.now() - started,
              clientCalls: r.apiCalls,
            };
          })),
    },
  ];
  skipped.push(...methods.flatMap((m) => (m.skip ? [m.skip] : [])));
  const active = methods.filter((m) => !m.skip);
  const samples = new Map<Method, Sample[]>(active.map((m) => [m, []]));
  for (let r = 1; r <= context.runs; r++) {
    for (const method of active) {
      context.log(`run ${r}/${context.runs}: ${method.label} (${method.measured} tasks)`);
      const s = await method.sample();
      context.log(`  ${fixed(s.wallMs / 1000, 1)} s, ${s.clientCalls ?? "?"} API calls`);
      samples.get(method)!.push(s);
    }
  }

  const original = active.find((m) => m.label.startsWith("original"));
  const perTasks = (m: Method, f: (s: Sample) => number | undefined) => {
    const values = samples.get(m)!.map((s) => {
      const v = f(s);
      return v === undefined ? undefined : (v / s.measured) * tasks;
    }).filter((v): v is number => v !== undefined);
    return values.length ? median(values) : undefined;
  };
  const originalWall = original && perTasks(original, (s) => s.uploadMs + s.createMs);
  const rows = active.map((m) => {
    const wall = perTasks(m, (s) => s.uploadMs + s.createMs);
    return [
      m.label,
      `${m.measured.toLocaleString("en-US")}${
        m.measured < tasks ? ` (×${tasks / m.measured})` : ""
      }`,
      String(samples.get(m)!.length),
      fixed((perTasks(m, (s) => s.uploadMs) ?? NaN) / 1000, 1),
      fixed((perTasks(m, (s) => s.createMs) ?? NaN) / 1000, 1),
      fixed((wall ?? NaN) / 1000, 1),
      fixed(perTasks(m, (s) => s.clientCalls), 0),
      fixed(perTasks(m, (s) => s.serverCalls), 0),
      ratio(wall, originalWall),
    ];
  });
  const table: Table = {
    title: `Submission: ${tasks.toLocaleString("en-US")} tasks, inputs to the GCS emulator`,
    columns: [
      "Method",
      "Tasks measured",
      "Runs",
      `Upload s (${tasks.toLocaleString("en-US")})`,
      `Create s (${tasks.toLocaleString("en-US")})`,
      `Total s (${tasks.toLocaleString("en-US")})`,
      "API calls (client)",
      "API calls (apiserver metrics)",
      "vs original",
    ],
    rows,
    notes: [
      `The original method is timed on ${sample} tasks and multiplied by ${
        tasks / sample
      } (extrapolated, marked ×${
        tasks / sample
      }); it runs sequentially as the original did: one input upload with @google-cloud/storage (client reused), then one \`kubectl create -f -\` process per pod. Pods carry a scheduling gate so none is scheduled or run.`,
      "API calls (client): the requests kubectl logged at -v=6: discovery and OpenAPI (for field validation) and the POST; after the first call kubectl answers the hashed OpenAPI document from its HTTP cache (in the benchmark cache), so it logs 3 per pod while the apiserver sees 2. API calls (apiserver metrics): the change of apiserver_request_total over the run, minus the apiserver's idle background rate measured for 5 s before; every client counts, so it is approximate.",
      "Upload s for kubeface is the time until the job is prepared: module bundled, every input uploaded through the bounded upload pool (uploadConcurrency, default 8), manifest written. Create s is the backend's open + submit: for Kubernetes, storing the bundled worker once, listing the job's Jobs, starting the watches, a server-side dry run and one create of an Indexed Job of every task (API calls (client) counts these requests; watches count as one each).",
    ],
  };
  return { tables: [table], skipped };
}

/** Benchmark 4: submitting 10,000 tasks, kubeface vs a `kubectl create` per task. */
export const submission: Benchmark = {
  name: "submission",
  description: "10,000 tasks submitted (inputs to the GCS emulator) vs a kubectl create per task",
  run,
};

if (import.meta.main) await main(submission, join("bench", "submission.ts"));
