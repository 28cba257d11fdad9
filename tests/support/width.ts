/**
 * One wide map on the KWOK pool of a test cluster, measured: the master runs in its own process
 * (bench/drivers/map_driver.ts) as the non-admin user of docs/rbac.yaml, so its CPU, memory and
 * API requests are its own; the apiserver's audit log (tests/infra/cluster/flags.ts) counts
 * those requests; a {@link KwokResultWriter} stores the pods' results; every task's stored
 * results are counted afterwards. Used by tests/width_test.ts (assertions) and bench/width.ts
 * (figures).
 *
 * @module
 */

import type { MapReport, MapSpec } from "../../bench/drivers/map_driver.ts";
import { readJson } from "../../lib/format/json.ts";
import { JobLayout } from "../../lib/format/layout.ts";
import type { JobStatus } from "../../lib/format/status.ts";
import { failedAttempts as countedFailures } from "../../lib/master/policies.ts";
import { openStorage } from "../../lib/storage/storage.ts";
import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { kubectl, pollUntil, type TestCluster } from "../infra/cluster/cluster.ts";
import { TEST_USER } from "../infra/cluster/flags.ts";
import { addKwokNodes, KWOK_NODE_PREFIX, kwokPlacement } from "../infra/cluster/kwok.ts";
import { KWOK_RESULT_ANNOTATION } from "../infra/cluster/kwok_config.ts";
import { readState } from "../infra/cluster/state.ts";
import { startEmulator } from "../infra/gcs_emulator.ts";
import { KwokResultWriter } from "../infra/kwok_results.ts";
import { resultCounts } from "./kwok.ts";

const REPO = new URL("../../", import.meta.url).pathname;

/** Options of {@link runWidth}. */
export interface WidthOptions {
  /** The cluster directory (of `cluster:up` or `up()`). */
  dir: string;
  /** Tasks of the map. */
  tasks: number;
  /** KWOK nodes (the pool is grown to this size). */
  nodes: number;
  /** Most tasks at once. @default {tasks} */
  parallelism?: number;
  /** Most completions per Kubernetes Job (internal option; lower it to split). @default 100000 */
  maxCompletionsPerJob?: number;
  /** Progress lines. @default () => {} */
  log?: (line: string) => void;
  /**
   * Disrupt the map once part of it is done; it then runs with `maxRetries: 0`, so a disruption
   * counted against the retries would fail it. @default {no disruption}
   */
  disrupt?: WidthDisruption;
}

/** Disruptions made in the middle of a wide map, as a spot pool or a drain makes them. */
export interface WidthDisruption {
  /** When: once this fraction (0 to 1) of the tasks has a stored result. */
  after: number;
  /** Fraction of the KWOK nodes deleted; their workers die with them. */
  deleteNodes: number;
  /** KWOK nodes drained with a `NoExecute` taint. */
  taintNodes: number;
  /** Running pods on the other nodes evicted through the Eviction API. */
  evictPods: number;
}

/** What the disruptions did, from the writer and the job's final status. */
export interface DisruptionReport {
  nodesDeleted: number;
  nodesTainted: number;
  podsEvicted: number;
  /** Tasks with a stored result when the disruptions began. */
  finishedBefore: number;
  /** Of those, tasks that got another attempt afterwards. */
  recomputed: number;
  /** Attempts the job's status reports `disrupted`. */
  disruptedAttempts: number;
  /** Failed attempts, as `--max-retries` counts them (lib/master/policies.ts). */
  failedAttempts: number;
  /** Attempts by outcome (`unfinished`: never ended). */
  outcomes: Record<string, number>;
  /** Tasks whose stored attempts are not exactly one `ok` among `ok` and `disrupted` ones. */
  tasksOtherwise: number;
  /** Disrupted attempts whose pod the master saw only deleted (its end missed between watches). */
  seenOnlyDeleted: number;
  /**
   * Seconds from a disrupted attempt's end (as the master saw it) to the submission of its task's
   * next attempt (a new Kubernetes Job), and to that attempt's start (its pod Running): the
   * replacement delay, which Kubernetes' own Job backoff made 10 s or more.
   */
  resubmitted: Spread;
  replacement: Spread;
}

/** Median and maximum of some delays, in seconds, and how many were measured. */
export interface Spread {
  medianS: number;
  maxS: number;
  measured: number;
}

function spread(values: number[]): Spread {
  const sorted = values.toSorted((a, b) => a - b);
  return {
    medianS: sorted[Math.floor(sorted.length / 2)] ?? NaN,
    maxS: sorted.at(-1) ?? NaN,
    measured: sorted.length,
  };
}

/** What one wide map did. */
export interface WidthReport {
  tasks: number;
  /** Kubernetes Jobs the master made. */
  jobs: number;
  /** The master's API requests, by `verb resource` (from the audit log). */
  requests: Record<string, number>;
  /** All of the master's API requests. */
  totalRequests: number;
  /**
   * Its watch requests: each ends after 60–90 s, or sooner when a CPU-starved apiserver drops
   * slow watchers (everyone's, not only the master's), and resumes; they grow with time and load.
   */
  watchRequests: number;
  /** Tasks with exactly one stored `.ok` result and no `.error`. */
  tasksWithOneResult: number;
  /** Results the KWOK writer stored more than once for the same attempt. */
  duplicateWrites: number;
  /** The master's report (times, CPU, peak RSS). */
  master: MapReport;
  /** Milliseconds from the job's submission (master ready) until every pod was seen Running. */
  allPodsRunningMs: number;
  /** Milliseconds from the job's submission until the last result was stored (by the writer). */
  lastStoredMs: number;
  /** Milliseconds from the job's submission until the last result reached the master. */
  lastResultMs: number;
  /** Bytes of the final status pages. */
  statusJsonBytes: number;
  statusHtmlBytes: number;
  /** Wall time of `kubeface status KEY` and of `kubeface jobs`, in milliseconds. */
  statusCliMs: number;
  jobsCliMs: number;
  /** With {@link WidthOptions.disrupt}: what the disruptions did. */
  disruption?: DisruptionReport;
}

/**
 * Run one wide map of `square.ts` on the KWOK pool of the cluster in `dir` and measure it.
 *
 * @param options The cluster, the map's width and the pool's size.
 * @returns Counts and figures.
 * @throws {Error} When the cluster is not running or the map fails.
 */
export async function runWidth(options: WidthOptions): Promise<WidthReport> {
  const { dir, tasks, nodes, parallelism = tasks, log = () => {} } = options;
  const state = await readState(dir);
  if (!state) throw new Error(`Cannot run a wide map: no cluster runs in ${dir}`);
  const cluster = {
    kubectl: state.kubectl,
    adminKubeconfig: state.adminKubeconfig,
  } as TestCluster;
  log(`growing the KWOK pool to ${nodes} nodes`);
  await addKwokNodes({ dir, nodes, onProgress: log });
  const namespace = `kf-width-${crypto.randomUUID().slice(0, 6)}`;
  for (
    const args of [
      ["create", "namespace", namespace],
      ["apply", "-n", namespace, "-f", `${REPO}docs/rbac.yaml`],
      [
        "create",
        "rolebinding",
        "kubeface-master",
        "-n",
        namespace,
        "--role=kubeface-master",
        `--user=${TEST_USER}`,
      ],
    ]
  ) {
    const r = await kubectl(cluster, args);
    if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")} failed: ${r.stderr}`);
  }
  await pollUntil(
    "the namespace's default ServiceAccount",
    async () =>
      (await kubectl(cluster, ["get", "serviceaccount", "default", "-n", namespace])).code === 0
        ? true
        : undefined,
  );
  // On disk: fake-gcs-server's memory backend scans a list of every object on each request, so a
  // map of 10,000 tasks (30,000 objects) spent more time there than in the control plane.
  await using emulator = await startEmulator({ backend: "filesystem" });
  await emulator.createBucket("width");
  const storageUrl = "gs://width/runs/";
  const env = { STORAGE_EMULATOR_HOST: emulator.url };
  Deno.env.set("STORAGE_EMULATOR_HOST", emulator.url);
  await using storage = await openStorage(storageUrl);
  const admin = new KubeConfig();
  admin.loadFromFile(state.adminKubeconfig);
  const problems: string[] = [];
  await using writer = await KwokResultWriter.start({
    kubeConfig: admin,
    namespace,
    storage,
    compute: (x) => (x as number) * (x as number),
    concurrency: 64,
    onProblem: (line) => problems.push(line),
  });
  const audit = `${dir}/logs/audit.log`;
  const auditStart = (await Deno.stat(audit).catch(() => ({ size: 0 }))).size;
  const spec: MapSpec = {
    module: `${REPO}bench/modules/square.ts`,
    count: tasks,
    storage: storageUrl,
    backend: "kubernetes",
    kubernetes: {
      kubeconfig: state.userKubeconfig,
      namespace,
      ...kwokPlacement(),
      ...(options.maxCompletionsPerJob
        ? { maxCompletionsPerJob: options.maxCompletionsPerJob }
        : {}),
    },
    parallelism,
    speculation: false,
    ...(options.disrupt ? { maxRetries: 0 } : {}),
    uploadConcurrency: 32,
    sampleMs: 1000,
  };
  log(`mapping ${tasks} tasks (parallelism ${parallelism})`);
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--v8-flags=--expose-gc", // its live heap at 90 % of the results (MapReport.liveHeapBytes)
      `--config=${REPO}deno.json`,
      `${REPO}bench/drivers/map_driver.ts`,
      JSON.stringify(spec),
    ],
    env,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let ended = false;
  const mapping = child.output().finally(() => ended = true);
  let disrupted: Disrupted | undefined;
  if (options.disrupt) {
    try {
      disrupted = await disruptMidway({
        ...options,
        disrupt: options.disrupt,
        cluster,
        admin,
        namespace,
        writer,
        ended: () => ended,
      });
    } catch (error) {
      if (!ended) child.kill();
      await mapping;
      throw error;
    }
  }
  const output = await mapping.finally(() => disrupted?.undo());
  const stderr = new TextDecoder().decode(output.stderr);
  if (!output.success) throw new Error(`The master failed (exit ${output.code}): ${stderr}`);
  const master = JSON.parse(
    new TextDecoder().decode(output.stdout).trim().split("\n").at(-1)!,
  ) as MapReport;
  if (problems.length > 0) {
    throw new Error(`The KWOK result writer failed:\n${problems.join("\n")}`);
  }
  const expected = Array.from({ length: tasks }, (_, i) => i * i).reduce((a, b) => a + b, 0);
  if (master.results !== tasks || master.checksum !== expected) {
    throw new Error(
      `The master yielded ${master.results} results (checksum ${master.checksum}, expected ${expected})`,
    );
  }
  // The master's requests: the audit log's events of the test user since the map started.
  await new Promise((resolve) => setTimeout(resolve, 2000)); // the audit backend batches writes
  const requests: Record<string, number> = {};
  let totalRequests = 0;
  let watchRequests = 0;
  const file = await Deno.open(audit);
  await file.seek(auditStart, Deno.SeekMode.Start);
  const text = new TextDecoder().decode(await new Response(file.readable).arrayBuffer());
  for (const line of text.split("\n")) {
    if (!line) continue;
    const event = JSON.parse(line) as {
      user?: { username?: string };
      verb?: string;
      objectRef?: { resource?: string; subresource?: string; namespace?: string };
      requestURI?: string;
    };
    if (event.user?.username !== TEST_USER || event.objectRef?.namespace !== namespace) continue;
    const dry = event.requestURI?.includes("dryRun=All") ? " (dry run)" : "";
    const what = `${event.verb} ${event.objectRef?.resource}${dry}`;
    requests[what] = (requests[what] ?? 0) + 1;
    totalRequests++;
    if (event.verb === "watch") watchRequests++;
  }
  const layout = new JobLayout(master.job);
  const counts = await resultCounts(storage, layout.resultsPrefix);
  const tasksWithOneResult = [...counts.values()].filter((c) => c.ok === 1 && c.error === 0).length;
  const duplicateWrites = [...writer.stored.values()].filter((n) => n > 1).length;
  const statusJsonBytes = (await storage.stat(layout.statusJson))?.size ?? NaN;
  const statusHtmlBytes = (await storage.stat(layout.statusHtml))?.size ?? NaN;
  const cli = async (args: string[]) => {
    const started = performance.now();
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `--config=${REPO}deno.json`, `${REPO}cli.ts`, ...args],
      env,
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!r.success) {
      throw new Error(`kubeface ${args.join(" ")} failed: ${new TextDecoder().decode(r.stderr)}`);
    }
    return performance.now() - started;
  };
  const disruption = disrupted &&
    disruptionReport(disrupted, await readJson<JobStatus>(storage, layout.statusJson));
  const statusCliMs = await cli(["status", master.job, "--storage", storageUrl]);
  const jobsCliMs = await cli(["jobs", "--storage", storageUrl]);
  await kubectl(cluster, ["delete", "namespace", namespace, "--wait=false"]);
  return {
    tasks,
    jobs: requests["create jobs"] ?? 0,
    requests,
    totalRequests,
    watchRequests,
    tasksWithOneResult,
    duplicateWrites,
    master,
    allPodsRunningMs: writer.podsSeen >= tasks ? writer.lastPodSeenAt - master.readyAt : NaN,
    lastStoredMs: writer.lastStoredAt - master.readyAt,
    lastResultMs: master.lastMs - master.readyMs,
    statusJsonBytes,
    statusHtmlBytes,
    statusCliMs,
    jobsCliMs,
    ...(disruption ? { disruption } : {}),
  };
}

const DRAIN_TAINT = "kubeface.dev/drain";

/** What {@link disruptMidway} did, and how to undo the taints. */
interface Disrupted {
  nodesDeleted: number;
  nodesTainted: number;
  podsEvicted: number;
  /** Tasks with a stored result when the disruptions began. */
  finishedBefore: Set<number>;
  undo(): Promise<void>;
}

/**
 * Once `disrupt.after` of the tasks have a stored result, delete the first KWOK nodes, taint the
 * next ones `NoExecute`, and evict running pods elsewhere through the Eviction API. The writer is
 * told first: the workers of those pods store nothing more, as a worker killed by its kubelet (or
 * gone with its node) stores nothing after its pod ended.
 */
async function disruptMidway(options: {
  tasks: number;
  nodes: number;
  disrupt: WidthDisruption;
  cluster: TestCluster;
  admin: KubeConfig;
  namespace: string;
  writer: KwokResultWriter;
  /** Whether the map has ended. */
  ended: () => boolean;
  log?: (line: string) => void;
}): Promise<Disrupted> {
  const { tasks, nodes, disrupt, cluster, namespace, writer, log = () => {} } = options;
  await pollUntil(
    `${disrupt.after} of the tasks with a stored result`,
    () => {
      if (writer.stored.size >= disrupt.after * tasks) return Promise.resolve(true);
      if (options.ended()) throw new Error("The map ended before the disruptions began");
      return Promise.resolve(undefined);
    },
    { timeoutMs: 3_600_000, intervalMs: 200 },
  );
  const finishedBefore = new Set([...writer.stored.keys()].map((id) => Number(id.split("/")[0])));
  const names = Array.from({ length: nodes }, (_, i) => `${KWOK_NODE_PREFIX}${i}`);
  const lost = names.slice(0, Math.round(disrupt.deleteNodes * nodes));
  const tainted = names.slice(lost.length, lost.length + disrupt.taintNodes);
  log(
    `disrupting after ${finishedBefore.size} results: deleting ${lost.length} nodes, tainting ${tainted.length}, evicting ${disrupt.evictPods} pods`,
  );
  const run = async (args: string[]) => {
    const r = await kubectl(cluster, args);
    if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")} failed: ${r.stderr}`);
  };
  // Their workers die with the nodes (drained ones too): none stores a result after this.
  for (const name of [...lost, ...tainted]) await writer.loseNode(name);
  if (lost.length > 0) await run(["delete", "node", ...lost, "--wait=false"]);
  for (const name of tainted) await run(["taint", "node", name, `${DRAIN_TAINT}=now:NoExecute`]);
  const spared = new Set([...lost, ...tainted]);
  const core = options.admin.makeApiClient(CoreV1Api);
  const victims = (await core.listNamespacedPod({
    namespace,
    labelSelector: "app.kubernetes.io/managed-by=kubeface",
  })).items.filter((pod) =>
    pod.status?.phase === "Running" && !pod.metadata?.deletionTimestamp &&
    !spared.has(pod.spec?.nodeName ?? "") && !pod.metadata?.annotations?.[KWOK_RESULT_ANNOTATION]
  ).slice(0, disrupt.evictPods);
  for (const pod of victims) {
    await writer.evict(pod.metadata!.name!);
  }
  return {
    nodesDeleted: lost.length,
    nodesTainted: tainted.length,
    podsEvicted: victims.length,
    finishedBefore,
    undo: async () => {
      for (const name of tainted) await run(["taint", "node", name, `${DRAIN_TAINT}-`]);
    },
  };
}

/** The disruptions' outcome, from the job's final status. */
function disruptionReport(disrupted: Disrupted, status: JobStatus): DisruptionReport {
  let recomputed = 0;
  let disruptedAttempts = 0;
  let failedAttempts = 0;
  let tasksOtherwise = 0;
  let seenOnlyDeleted = 0;
  const outcomeCounts: Record<string, number> = {};
  const submitted: number[] = [];
  const started: number[] = [];
  for (const task of status.tasks) {
    const outcomes = task.attempts.map((a) => a.outcome);
    if (disrupted.finishedBefore.has(task.task) && task.attempts.length > 1) recomputed++;
    const ok = outcomes.filter((o) => o === "ok").length;
    // What --max-retries counts (a cancelled or unfinished attempt is no failure).
    const failed = countedFailures(task);
    failedAttempts += failed;
    for (const key of outcomes.map((o) => o ?? "unfinished")) {
      outcomeCounts[key] = (outcomeCounts[key] ?? 0) + 1;
    }
    if (ok !== 1 || failed > 0) tasksOtherwise++;
    for (const [i, attempt] of task.attempts.entries()) {
      if (attempt.outcome !== "disrupted") continue;
      disruptedAttempts++;
      if (attempt.detail?.includes("was deleted as it ran")) seenOnlyDeleted++;
      const next = task.attempts[i + 1];
      if (!attempt.endedAt || !next) continue;
      const ended = Date.parse(attempt.endedAt);
      submitted.push((Date.parse(next.submittedAt) - ended) / 1000);
      if (next.startedAt) started.push((Date.parse(next.startedAt) - ended) / 1000);
    }
  }
  return {
    nodesDeleted: disrupted.nodesDeleted,
    nodesTainted: disrupted.nodesTainted,
    podsEvicted: disrupted.podsEvicted,
    finishedBefore: disrupted.finishedBefore.size,
    recomputed,
    disruptedAttempts,
    failedAttempts,
    tasksOtherwise,
    seenOnlyDeleted,
    outcomes: outcomeCounts,
    resubmitted: spread(submitted),
    replacement: spread(started),
  };
}

/**
 * {@link runWidth} in a process of its own, its progress lines passed to `log`: the caller then
 * holds no HTTP/2 session to the apiserver when the cluster stops, which crashes Deno's nghttp2
 * (exit 139) on the server's GOAWAY.
 *
 * @param options The cluster, the map's width and the pool's size.
 * @returns Counts and figures.
 * @throws {Error} When the wide map fails (with its process's error output).
 */
export async function runWidthInSubprocess(options: WidthOptions): Promise<WidthReport> {
  const { log = () => {}, ...rest } = options;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      `--config=${REPO}deno.json`,
      new URL(import.meta.url).pathname,
      JSON.stringify(rest),
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  const stderr = child.stderr.pipeThrough(new TextDecoderStream()).pipeThrough(
    new TransformStream<string, string>({
      transform(chunk, controller) {
        for (const line of chunk.split("\n")) if (line) controller.enqueue(line);
      },
    }),
  );
  const [output] = await Promise.all([
    new Response(child.stdout).text(),
    stderr.pipeTo(
      new WritableStream({
        write(line) {
          lines.push(line);
          log(line);
        },
      }),
    ),
  ]);
  const { success, code } = await child.status;
  if (!success) {
    throw new Error(`The wide map failed (exit ${code}):\n${lines.slice(-40).join("\n")}`);
  }
  return JSON.parse(output.trim().split("\n").at(-1)!) as WidthReport;
}

// `deno run -A tests/support/width.ts '<WidthOptions as JSON>'` runs one wide map, its progress on
// stderr and its report as JSON on stdout (see runWidthInSubprocess).
if (import.meta.main) {
  const report = await runWidth({
    ...JSON.parse(Deno.args[0]!) as WidthOptions,
    // deno-lint-ignore no-console
    log: (line) => console.error(line),
  });
  // deno-lint-ignore no-console
  console.log(JSON.stringify(report));
  Deno.exit(0); // client-node keeps agents and timers alive
}
