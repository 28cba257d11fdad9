/**
 * The fairness benchmark on the test cluster's real node: kubeface's pods
 * (stock Deno image with the bootstrap, or the worker image) next to a bare
 * Indexed Job of the same image whose pods only sleep the same lengths,
 * with, for each pod, the time from its creation (when a watch on the
 * namespace saw it) to the start of its task.
 *
 * @module
 */

import { KubeConfig, type V1Pod } from "@kubernetes/client-node";
import { resultHeaders } from "../../tests/support/jobs.ts";
import type { Emulator } from "../../tests/infra/gcs_emulator.ts";
import { type BenchCluster, kubectl } from "./cluster.ts";
import { newBucket } from "./emulator.ts";
import type { Interval } from "./idle.ts";
import { benchModule, runDriver } from "./kubeface.ts";

/** What one run on pods measured. */
export interface PodRun {
  /** The tasks' own start and end times. */
  intervals: Interval[];
  /** When the job was ready to be submitted (kubeface) or the Job was created (bare). */
  readyAt: number;
  /** Per pod that ran a task: from its creation to the task's start, in milliseconds. */
  createdToStartMs: number[];
}

/** The cluster, the storage emulator and the images. */
export interface PodEnv {
  cluster: BenchCluster;
  emulator: Emulator;
  /** The worker image imported into the node, if any. */
  workerImage?: string;
}

/** The stock Deno image as the Kubernetes backend names it by default. */
export const STOCK_IMAGE = `denoland/deno:${Deno.version.deno}`;

/** Every pod of the benchmark: the host's network (pods may have no address here), no pulls. */
const PATCH = { spec: { hostNetwork: true } };

/**
 * Record when each pod of `namespace` first appears, by name: list, then watch from the list's
 * resourceVersion, over HTTP/1.1 (an HTTP/2 session that the apiserver ends when the cluster
 * stops crashes Deno's nghttp2).
 */
async function watchPods(
  cluster: BenchCluster,
  namespace: string,
): Promise<{ seen: Map<string, number>; stop: () => Promise<void> }> {
  const config = new KubeConfig();
  config.loadFromFile(cluster.kubeconfig);
  const server = config.getCurrentCluster()!.server;
  const caData = config.getCurrentCluster()!.caData!;
  const client = Deno.createHttpClient({ caCerts: [atob(caData)], http2: false });
  const headers = { Authorization: `Bearer ${config.getCurrentUser()!.token}` };
  const path = `${server}/api/v1/namespaces/${namespace}/pods`;
  const list = await fetch(path, { client, headers });
  if (!list.ok) throw new Error(`Cannot list pods: ${list.status} ${await list.text()}`);
  const { metadata } = await list.json() as { metadata: { resourceVersion: string } };
  const abort = new AbortController();
  const watch = await fetch(`${path}?watch=1&resourceVersion=${metadata.resourceVersion}`, {
    client,
    headers,
    signal: abort.signal,
  });
  if (!watch.ok || !watch.body) throw new Error(`Cannot watch pods: ${watch.status}`);
  const seen = new Map<string, number>();
  const reading = (async () => {
    let buffer = "";
    for await (const chunk of watch.body!.pipeThrough(new TextDecoderStream())) {
      const lines = (buffer + chunk).split("\n");
      buffer = lines.pop() ?? "";
      for (const line of lines.filter(Boolean)) {
        const event = JSON.parse(line) as { type: string; object: V1Pod };
        const name = event.object.metadata?.name;
        if (event.type === "ADDED" && name && !seen.has(name)) seen.set(name, Date.now());
      }
    }
  })();
  return {
    seen,
    stop: async () => {
      abort.abort();
      await reading.catch(() => {});
      client.close();
    },
  };
}

/** Run `fn` in a new namespace with a pod watch, deleting the namespace afterwards. */
async function inNamespace<T>(
  cluster: BenchCluster,
  prefix: string,
  fn: (namespace: string, seen: Map<string, number>) => Promise<T>,
): Promise<T> {
  const namespace = `${prefix}-${crypto.randomUUID().slice(0, 6)}`;
  await kubectl(cluster, ["create", "namespace", namespace]);
  // Pods are refused until the namespace's default ServiceAccount exists.
  const account = ["get", "-n", namespace, "serviceaccount", "default"];
  for (let i = 0; i < 600 && !(await kubectl(cluster, account).catch(() => "")); i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const watch = await watchPods(cluster, namespace);
  try {
    return await fn(namespace, watch.seen);
  } finally {
    await watch.stop();
    await kubectl(cluster, ["delete", "namespace", namespace, "--wait=false"]).catch(() => "");
  }
}

/**
 * kubeface's tasks as pods: the stock Deno image with the bootstrap, or the worker image.
 *
 * @param env The cluster, the emulator and the worker image.
 * @param durations The task lengths in milliseconds.
 * @param parallelism Slots.
 * @param workerImage Run the worker image instead of the stock one.
 */
export function kubefacePods(
  env: PodEnv,
  durations: number[],
  parallelism: number,
  workerImage: boolean,
): Promise<PodRun> {
  return inNamespace(env.cluster, "kf-bench-fair", async (namespace, seen) => {
    const storage = `gs://${await newBucket(env.emulator, "kf-bench-fair")}/runs/`;
    const { report } = await runDriver({
      module: benchModule("sleep.ts"),
      inputs: durations,
      storage,
      backend: "kubernetes",
      kubernetes: {
        kubeconfig: env.cluster.kubeconfig,
        namespace,
        imagePullPolicy: "Never",
        podTemplatePatch: PATCH,
        ...(workerImage ? { image: env.workerImage, workerImage: true } : {}),
      },
      parallelism,
    }, { env: { STORAGE_EMULATOR_HOST: env.emulator.url } });
    Deno.env.set("STORAGE_EMULATOR_HOST", env.emulator.url);
    const headers = (await resultHeaders(storage, report.job)).filter((h) => h.status === "ok");
    const startOf = new Map(headers.map((h) => [h.attempt, Date.parse(h.startedAt)]));
    // Each worker logs "task N, attempt ID (index …)": that ties a pod to its result.
    const createdToStartMs: number[] = [];
    for (const [pod, created] of seen) {
      const log = await kubectl(env.cluster, ["logs", "-n", namespace, pod]).catch(() => "");
      const attempt = log.match(/attempt (\S+) \(index/)?.[1];
      const start = attempt ? startOf.get(attempt) : undefined;
      if (start !== undefined) createdToStartMs.push(start - created);
    }
    return {
      intervals: headers.map((h) => ({
        start: Date.parse(h.startedAt),
        end: Date.parse(h.endedAt),
      })),
      readyAt: report.readyAt,
      createdToStartMs,
    };
  });
}

/** What a bare pod runs: sleep its index's length between two clock readings, and print them. */
const BARE_TASK = `const start = Date.now();
const ms = JSON.parse(Deno.env.get("DURATIONS"))[Number(Deno.env.get("JOB_COMPLETION_INDEX"))];
await new Promise((resolve) => setTimeout(resolve, ms));
console.log(JSON.stringify({ start, end: Date.now() }));`;

/**
 * A bare Indexed Job of `image` (no kubeface): pod i sleeps `durations[i]`, P at a time.
 *
 * @param env The cluster.
 * @param durations The task lengths in milliseconds.
 * @param parallelism Slots.
 * @param image The image whose `deno` runs the sleep.
 */
export function barePods(
  env: PodEnv,
  durations: number[],
  parallelism: number,
  image: string,
): Promise<PodRun> {
  return inNamespace(env.cluster, "kf-bench-bare", async (namespace, seen) => {
    const job = {
      apiVersion: "batch/v1",
      kind: "Job",
      metadata: { name: "bare" },
      spec: {
        completionMode: "Indexed",
        completions: durations.length,
        parallelism,
        backoffLimit: 0,
        template: {
          spec: {
            ...PATCH.spec,
            restartPolicy: "Never",
            automountServiceAccountToken: false,
            containers: [{
              name: "main",
              image,
              imagePullPolicy: "Never",
              command: ["deno", "eval", BARE_TASK],
              env: [{ name: "DURATIONS", value: JSON.stringify(durations) }],
            }],
          },
        },
      },
    };
    const file = await Deno.makeTempFile({ suffix: ".json" });
    try {
      await Deno.writeTextFile(file, JSON.stringify(job));
      const readyAt = Date.now();
      await kubectl(env.cluster, ["create", "-n", namespace, "-f", file]);
      await kubectl(env.cluster, [
        "wait",
        "-n",
        namespace,
        "--for=condition=Complete",
        "job/bare",
        "--timeout=600s",
      ]);
      const intervals: Interval[] = [];
      const createdToStartMs: number[] = [];
      for (const [pod, created] of seen) {
        const log = await kubectl(env.cluster, ["logs", "-n", namespace, pod]);
        const run = JSON.parse(log.trim().split("\n").at(-1)!) as Interval;
        intervals.push(run);
        createdToStartMs.push(run.start - created);
      }
      return { intervals, readyAt, createdToStartMs };
    } finally {
      await Deno.remove(file);
    }
  });
}
