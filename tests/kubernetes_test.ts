/**
 * The Kubernetes backend against the real test control plane (see
 * tests/infra/cluster/), with the master running as a non-admin user under
 * exactly the Role of docs/rbac.yaml, and GCS (the emulator) as storage.
 *
 * @module
 */

import assert from "node:assert/strict";
import { BatchV1Api, CoreV1Api, SchedulingV1Api } from "@kubernetes/client-node";
import { jobSpec } from "../lib/backends/kubernetes/job_spec.ts";
import { KubernetesBackend } from "../lib/backends/kubernetes/kubernetes.ts";
import { JOB_LABEL, jobLabel } from "../lib/backends/kubernetes/names.ts";
import {
  type KubernetesBackendOptions,
  parseToleration,
} from "../lib/backends/kubernetes/options.ts";
import {
  BackendError,
  Client,
  JobLayout,
  openStorage,
  parseKubefaceArgs,
  TaskError,
  WorkerCrashError,
} from "../mod.ts";
import { parsePermissions } from "../lib/permissions.ts";
import { LIST_PAGE_SIZE, listInPages } from "../lib/backends/kubernetes/watch.ts";
import { kubectl, pollUntil } from "./infra/cluster/cluster.ts";
import { denoRun, kubeface, REPO_ROOT, spawnKubeface } from "./support/cli.ts";
import { CountingKubeConfig } from "./support/kubeconfig.ts";
import { collect, failure, fixture, waitFor, withMarkers } from "./support/jobs.ts";

const INDEX_LABEL = "batch.kubernetes.io/job-completion-index";
import { clusterFlags, jobsOf, kubernetesTest, podsOf } from "./support/targets.ts";

const calm = { speculationPercent: 0, retryDelayMs: 10 };

async function tempDir(): Promise<{ path: string } & AsyncDisposable> {
  const path = await Deno.makeTempDir({ prefix: "kubeface-k8s-" });
  return { path, [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }) };
}

/** For tests whose pods never run a task: one bootstrap is enough. */
const apiOnly = { bootstraps: ["stock" as const] };

kubernetesTest(
  "a 10,000-task job is submitted as one Kubernetes Job with a handful of API calls",
  async (ctx) => {
    const kubeConfig = new CountingKubeConfig();
    kubeConfig.loadFromFile(ctx.cluster.userKubeconfig);
    // The backend refuses storage pods cannot reach, so the 10,000 inputs go to the emulator.
    const client = new Client({
      storage: ctx.storage,
      backend: new KubernetesBackend(ctx.client.kubernetes, kubeConfig),
    });
    const run = client.map(fixture("echo.ts"), {
      ...calm,
      parallelism: 2,
      inputs: Array.from({ length: 10_000 }, (_, i) => i),
      uploadConcurrency: 32,
    });
    const consuming = collect(run).catch((error) => error);
    const [job] = await pollUntil("the Kubernetes Job", async () => {
      const jobs = await jobsOf(ctx, run.job);
      return jobs.length > 0 ? jobs : undefined;
    }, { timeoutMs: 900_000 }); // 10,000 uploads to the emulator, with every suite running at once
    const calls = [...kubeConfig.calls];
    await run.cancel();
    await consuming;
    assert.equal(job!.spec?.completions, 10_000);
    assert.equal(job!.spec?.parallelism, 2);
    assert.equal(job!.spec?.completionMode, "Indexed");
    assert.deepEqual(
      calls.filter((c) => c.startsWith("create")),
      ["createNamespacedJob", "createNamespacedJob"],
      "one server-side dry run, then the Job",
    );
    assert.ok(calls.length <= 6, `${calls.length} API calls: ${calls.join(", ")}`);
    await pollUntil(
      "the cancelled Job to go",
      async () => (await jobsOf(ctx, run.job)).length === 0 ? true : undefined,
    );
  },
  apiOnly,
);

kubernetesTest(
  "informers list in pages of 500, as one snapshot, so a list of 100,000 pods fits the request timeout",
  async (ctx) => {
    const core = ctx.cluster.kubeConfig.makeApiClient(CoreV1Api);
    const names = Array.from({ length: 12 }, (_, i) => `paged-${String(i).padStart(2, "0")}`);
    for (const name of names) {
      await core.createNamespacedConfigMap({
        namespace: ctx.namespace,
        body: { metadata: { name, labels: { paged: "yes" } }, data: { name } },
      });
    }
    const calls: (string | undefined)[] = [];
    const list = await listInPages(async (_continue, limit) => {
      calls.push(_continue);
      const page = await core.listNamespacedConfigMap({
        namespace: ctx.namespace,
        labelSelector: "paged=yes",
        limit: 5,
        _continue,
      });
      assert.equal(limit, LIST_PAGE_SIZE);
      if (calls.length === 1) {
        // A change after the first page is not in this snapshot; the watch from it brings it.
        await core.deleteNamespacedConfigMap({ name: names[11]!, namespace: ctx.namespace });
      }
      return page;
    });
    assert.equal(calls.length, 3, "12 objects in pages of 5");
    assert.equal(calls[0], undefined);
    assert.ok(calls[1] && calls[2] && calls[1] !== calls[2], "each page continues the last");
    assert.deepEqual(list.items.map((c) => c.metadata?.name).sort(), names);
    const rest = await core.listNamespacedConfigMap({
      namespace: ctx.namespace,
      labelSelector: "paged=yes",
    });
    assert.ok(Number(list.metadata?.resourceVersion) < Number(rest.metadata?.resourceVersion));
  },
  apiOnly,
);

kubernetesTest("a pod deleted mid-run is replaced and the job completes", async (ctx) => {
  await withMarkers(async (dir, perms) => {
    // Task 1's first attempt writes a marker and hangs; a replacement sees it and returns.
    const run = new Client(ctx.client).map<number, number>(fixture("first_attempt_hangs.ts"), {
      ...calm,
      ...perms,
      parallelism: 4,
    });
    const results = collect(run);
    await waitFor(
      "task 1 to start",
      () => Deno.stat(`${dir}/pid`).then(() => true, () => undefined),
      120_000,
    );
    // In a job's first Kubernetes Job, the completion index is the task's index.
    const victim = (await podsOf(ctx, run.job)).find((p) =>
      p.metadata?.labels?.[INDEX_LABEL] === "1" && p.status?.phase === "Running"
    );
    assert.ok(victim, "task 1's pod runs");
    const core = ctx.cluster.kubeConfig.makeApiClient(CoreV1Api);
    await core.deleteNamespacedPod({ name: victim.metadata!.name!, namespace: ctx.namespace });
    assert.deepEqual(await results, [0, 10, 20, 30]);
    const sameIndex = (await podsOf(ctx, run.job)).filter((p) =>
      p.metadata?.labels?.[INDEX_LABEL] === "1"
    );
    const replacements = sameIndex.filter((p) => p.metadata?.uid !== victim.metadata?.uid);
    assert.ok(
      replacements.some((p) => p.status?.phase === "Succeeded"),
      "index 1 has no replacement pod that succeeded",
    );
  });
});

kubernetesTest(
  "a task that throws fails its index without a retry and the error reaches the master",
  async (ctx) => {
    const run = new Client(ctx.client).map(fixture("throws.ts"), {
      ...calm,
      maxRetries: 2,
      failFast: false,
    });
    const error = await failure(run);
    assert.ok(error instanceof TaskError, `expected a TaskError, got ${error}`);
    assert.equal(error.task, 3);
    assert.equal(error.remoteMessage, "cannot handle 3");
    const [job] = await jobsOf(ctx, run.job);
    const pods = (await podsOf(ctx, run.job)).filter((p) =>
      p.metadata?.labels?.["batch.kubernetes.io/job-completion-index"] === "3"
    );
    assert.equal(pods.length, 1, "the pod failure policy failed the index at once");
    await pollUntil("index 3 to be failed", async () => {
      const [now] = await jobsOf(ctx, run.job);
      return now?.status?.failedIndexes === "3" ? true : undefined;
    }).catch(() => assert.fail(`failedIndexes is ${job?.status?.failedIndexes}`));
  },
);

kubernetesTest(
  "a map wider than the cluster waits for room while its pods run, not failing as unstartable",
  async (ctx) => {
    // The node has 2 CPUs: one pod of 1.2 fits at a time; the second waits 20 s, past the limit.
    const client = new Client({
      ...ctx.client,
      kubernetes: { ...ctx.client.kubernetes, cpu: "1200m", unstartableTimeoutMs: 12_000 },
    });
    const run = client.map<number, number>(fixture("twenty_seconds.ts"), {
      ...calm,
      parallelism: 2,
    });
    const results = collect(run);
    await waitFor(
      "the second pod to wait for room",
      async () =>
        (await podsOf(ctx, run.job)).some((pod) =>
            pod.status?.conditions?.some((c) =>
              c.type === "PodScheduled" && c.reason === "Unschedulable" &&
              /Insufficient cpu/.test(c.message ?? "")
            )
          )
          ? true
          : undefined,
      60_000,
    );
    assert.deepEqual(await results, [2, 4], "both tasks ran, one after the other");
  },
  { bootstraps: ["stock"] },
);

kubernetesTest(
  "a task asking for more memory than any node has fails with the scheduler's reason",
  async (ctx) => {
    const client = new Client({
      ...ctx.client,
      kubernetes: { ...ctx.client.kubernetes, memory: "100Ti", unstartableTimeoutMs: 3000 },
    });
    const run = client.map(fixture("half.ts"), { ...calm, parallelism: 2 });
    const error = await failure(run);
    assert.ok(error instanceof WorkerCrashError, `expected a WorkerCrashError, got ${error}`);
    assert.equal(error.kind, "infrastructure");
    assert.match(
      error.message,
      /could not run: unschedulable: 0\/\d+ nodes are available: .*Insufficient memory/,
    );
    await pollUntil(
      "the Kubernetes Job to be deleted",
      async () => (await jobsOf(ctx, run.job)).length === 0 ? true : undefined,
    );
  },
  apiOnly,
);

kubernetesTest(
  "a master killed mid-job and run again attaches to the same Kubernetes Job",
  async (ctx) => {
    const key = `attach-${crypto.randomUUID().slice(0, 6)}`;
    const args = [
      "map",
      "-m",
      fixture("slow_squares.ts"),
      ...clusterFlags(ctx),
      "--job",
      key,
      "-q",
      "--parallelism",
      "2",
      "--speculation-percent",
      "0",
    ];
    const master = spawnKubeface(args);
    await pollUntil(
      "a running pod",
      async () => (await podsOf(ctx, key)).find((p) => p.status?.phase === "Running"),
      { timeoutMs: 120_000 },
    );
    master.kill("SIGKILL");
    await master.output();
    const rerun = await kubeface(args);
    assert.equal(rerun.code, 0, rerun.stderr);
    const lines = rerun.stdout.trimEnd().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(lines, Array.from({ length: 12 }, (_, i) => ({ input: i, result: i * i })));
    assert.equal((await jobsOf(ctx, key)).length, 1, "no second Kubernetes Job");
  },
);

kubernetesTest("the example job file runs on Kubernetes with flags", async (ctx) => {
  const prefix = `example-${crypto.randomUUID().slice(0, 6)}`;
  const r = await denoRun(`${REPO_ROOT}examples/job.ts`, [
    ...clusterFlags(ctx),
    "--job-prefix",
    prefix,
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(
    r.stdout,
    `job ${prefix}-000: the sum of the first 20 squares is 2470\n` +
      `job ${prefix}-001: hello-world a-parallel-map-on-kubernetes kubeface-runs-tasks\n`,
  );
  for (const key of [`${prefix}-000`, `${prefix}-001`]) {
    assert.equal((await jobsOf(ctx, key)).length, 1, `${key} ran as a Kubernetes Job`);
  }
});

kubernetesTest("the Job made from every option passes the API server's validation", async (ctx) => {
  await using storage = await openStorage(ctx.storage);
  const body = jobSpec({
    job: {
      key: "all-options",
      storage,
      layout: new JobLayout("all-options"),
      permissions: parsePermissions(["--allow-net"]),
      parallelism: 4,
      env: { A: "1" },
      timeoutMs: 90_000,
      tasks: 10,
      maxRetries: 2,
    },
    options: {
      image: "denoland/deno:2.9.6",
      imagePullPolicy: "Always",
      serviceAccount: "default",
      mountServiceAccountToken: true,
      cpu: "250m",
      memory: "256Mi",
      cpuLimit: "1",
      memoryLimit: "1Gi",
      gpus: 1,
      nodeSelector: { "kubernetes.io/os": "linux" },
      tolerations: [parseToleration("dedicated=batch:NoSchedule"), parseToleration("spot")],
      labels: { team: "genomics" },
      annotations: { "example.com/note": "anything goes here" },
      ttlSecondsAfterFinished: 600,
      // The README's GKE example (the priority class is made below: admission checks it exists).
      podTemplatePatch: {
        spec: {
          priorityClassName: "kubeface-batch",
          volumes: [{ name: "gcp-key", secret: { secretName: "kubeface-gcp-key" } }],
          initContainers: [{
            name: "log-shipper",
            image: "busybox:1.36",
            restartPolicy: "Always",
            command: ["sh", "-c", "sleep infinity"],
          }],
          containers: [{
            name: "worker",
            env: [{ name: "GOOGLE_APPLICATION_CREDENTIALS", value: "/var/secrets/gcp/key.json" }],
            volumeMounts: [{ name: "gcp-key", mountPath: "/var/secrets/gcp", readOnly: true }],
          }],
        },
      },
    },
    namespace: ctx.namespace,
    name: "kf-all-options",
    completions: 10,
    runtime: {
      worker: { key: "runtime/a.js", sha256: "a" },
      thread: { key: "runtime/b.js", sha256: "b" },
    },
  });
  await ctx.cluster.kubeConfig.makeApiClient(SchedulingV1Api).createPriorityClass({
    body: { metadata: { name: "kubeface-batch" }, value: 1000 },
  }).catch((error) => {
    if ((error as { code?: number }).code !== 409) throw error;
  });
  const batch = ctx.cluster.userKubeConfig.makeApiClient(BatchV1Api);
  const created = await batch.createNamespacedJob({
    namespace: ctx.namespace,
    body,
    dryRun: "All",
  });
  assert.equal(
    created.spec?.template.spec?.containers[0]?.resources?.limits?.["nvidia.com/gpu"],
    "1",
  );
  assert.equal(created.spec?.backoffLimitPerIndex, 2);
  assert.equal(created.spec?.template.spec?.activeDeadlineSeconds, 90);
  assert.equal(created.spec?.template.spec?.securityContext?.runAsNonRoot, true);
  const pod = created.spec?.template.spec;
  assert.equal(pod?.priorityClassName, "kubeface-batch");
  assert.deepEqual(pod?.initContainers?.map((c) => [c.name, c.restartPolicy]), [
    ["log-shipper", "Always"],
  ]);
  const worker = pod?.containers.find((c) => c.name === "worker");
  assert.deepEqual(worker?.volumeMounts?.map((m) => m.mountPath), ["/tmp", "/var/secrets/gcp"]);
  assert.equal(
    worker?.env?.find((e) => e.name === "GOOGLE_APPLICATION_CREDENTIALS")?.value,
    "/var/secrets/gcp/key.json",
  );
}, apiOnly);

/** The container resources of the pods a Job made with these options runs. */
async function podResources(options: KubernetesBackendOptions) {
  await using dir = await tempDir();
  await using storage = await openStorage(dir.path);
  const body = jobSpec({
    job: {
      key: "resources",
      storage,
      layout: new JobLayout("resources"),
      permissions: parsePermissions([]),
      parallelism: 1,
      env: {},
      timeoutMs: undefined,
      tasks: 1,
      maxRetries: 0,
    },
    options,
    namespace: "default",
    name: "kf-resources",
    completions: 1,
    runtime: {
      worker: { key: "runtime/a.js", sha256: "a" },
      thread: { key: "runtime/b.js", sha256: "b" },
    },
  });
  return body.spec?.template.spec?.containers[0]?.resources;
}

Deno.test("pods request 1 CPU and 1Gi by default, limited to the memory request", async () => {
  assert.deepEqual(await podResources({}), {
    requests: { cpu: "1", memory: "1Gi" },
    limits: { memory: "1Gi" },
  });
  assert.deepEqual(await podResources({ cpu: "250m", memory: "4Gi" }), {
    requests: { cpu: "250m", memory: "4Gi" },
    limits: { memory: "4Gi" },
  });
  assert.deepEqual(await podResources({ memoryLimit: "8Gi", cpuLimit: "2" }), {
    limits: { cpu: "2", memory: "8Gi" },
  }, "given only a limit, Kubernetes requests the limit");
});

Deno.test("each default pod resource can be turned off: null, or none on the command line", async () => {
  assert.deepEqual(await podResources({ cpu: null, memory: null }), {});
  assert.deepEqual(await podResources({ memoryLimit: null }), {
    requests: { cpu: "1", memory: "1Gi" },
  });
  assert.deepEqual(await podResources({ cpu: null }), {
    requests: { memory: "1Gi" },
    limits: { memory: "1Gi" },
  });
  const { options } = parseKubefaceArgs(["--cpu", "none", "--memory-limit", "none"]);
  assert.deepEqual(options.kubernetes, { cpu: null, memoryLimit: null });
  assert.deepEqual(await podResources(options.kubernetes!), { requests: { memory: "1Gi" } });
});

Deno.test("the Kubernetes backend refuses a local storage before anything is stored or created", async () => {
  await using dir = await tempDir();
  const kubeconfig = `${dir.path}/never-read`;
  const run = new Client({ storage: dir.path, backend: "kubernetes", kubernetes: { kubeconfig } })
    .map(fixture("echo.ts"), { inputs: [1] });
  const error = await failure(run);
  assert.ok(error instanceof BackendError, `expected a BackendError, got ${error}`);
  assert.equal(
    error.message,
    `Cannot run on Kubernetes with storage 'file://${dir.path}/': pods cannot reach a directory of this machine; use Google Cloud Storage, e.g. --storage gs://BUCKET/PREFIX (or KUBEFACE_STORAGE=gs://BUCKET/PREFIX)`,
  );
  assert.deepEqual([...Deno.readDirSync(dir.path)], [], "nothing was stored");
  await using storage = await openStorage(dir.path);
  const session = new KubernetesBackend({ kubeconfig }).open({
    key: "x",
    storage,
    layout: new JobLayout("x"),
    permissions: parsePermissions([]),
    parallelism: 1,
    env: {},
    timeoutMs: undefined,
    tasks: 1,
    maxRetries: 0,
  }, () => {});
  await assert.rejects(
    session,
    BackendError,
    "open() refuses it too, before reading the kubeconfig",
  );
});

Deno.test("malformed Kubernetes options are rejected before anything is created", () => {
  assert.throws(() => new KubernetesBackend({ memory: "lots" }), {
    name: "TypeError",
    message:
      "Cannot use memory request 'lots': it is not a Kubernetes quantity; write e.g. 500m or 2 (CPU), 512Mi or 4Gi (memory)",
  });
  assert.throws(() => new KubernetesBackend({ labels: { "bad key!": "x" } }), {
    name: "TypeError",
    message: /Cannot use label key 'bad key!'/,
  });
  assert.throws(() => new KubernetesBackend({ namespace: "Has_Caps" }), {
    name: "TypeError",
    message: /Cannot use namespace 'Has_Caps'/,
  });
  assert.throws(() => parseToleration("a:b:c"), {
    name: "TypeError",
    message: /Cannot use toleration 'a:b:c'/,
  });
  assert.throws(
    () =>
      new KubernetesBackend({ tolerations: [{ key: "k", effect: "Sometimes" as "NoSchedule" }] }),
    {
      name: "TypeError",
      message: /Cannot use toleration effect 'Sometimes'/,
    },
  );
  assert.throws(() => new KubernetesBackend({ runAsUser: 0 }), { name: "RangeError" });
});

kubernetesTest(
  "without permission to create Jobs the master fails saying which Role to grant",
  async (ctx) => {
    const ns = `${ctx.namespace}-ro`;
    for (
      const args of [
        ["create", "namespace", ns],
        [
          "create",
          "role",
          "read-only",
          "-n",
          ns,
          "--verb=get,list,watch",
          "--resource=jobs.batch,pods",
        ],
        [
          "create",
          "rolebinding",
          "read-only",
          "-n",
          ns,
          "--role=read-only",
          `--user=${ctx.cluster.userName}`,
        ],
      ]
    ) {
      const r = await kubectl(ctx.cluster, args);
      assert.equal(r.code, 0, r.stderr);
    }
    try {
      const client = new Client({
        ...ctx.client,
        kubernetes: { ...ctx.client.kubernetes, namespace: ns },
      });
      const error = await failure(client.map(fixture("half.ts"), calm));
      assert.ok(error instanceof BackendError, `expected a BackendError, got ${error}`);
      assert.match(
        error.message,
        new RegExp(
          `^Cannot create Jobs in namespace '${ns}': user '[^']+' is not allowed \\(.*\\); grant the Role in docs/rbac.yaml: kubectl apply -n ${ns} -f docs/rbac.yaml`,
        ),
      );
    } finally {
      await kubectl(ctx.cluster, ["delete", "namespace", ns, "--wait=false"]);
    }
  },
  apiOnly,
);

kubernetesTest(
  "kubeface logs shows a pod's output, says why once the pods are gone, and kubeface cleanup deletes the Kubernetes Jobs",
  async (ctx) => {
    const key = `logs-${crypto.randomUUID().slice(0, 6)}`;
    const flags = clusterFlags(ctx);
    const run = await kubeface([
      "run",
      "-e",
      "(console.log('hello from pod', value), value)",
      "-i",
      "[1, 2]",
      ...flags,
      "--job",
      key,
      "-q",
    ]);
    assert.equal(run.code, 0, run.stderr);
    const jobOnly = ["--backend", "--pod-template-patch", "--worker-image", "--image-pull-policy"];
    const logFlags = flags.filter((f, i) =>
      !jobOnly.includes(f) && !jobOnly.includes(flags[i - 1]!)
    );
    const logs = await kubeface(["logs", key, "1", ...logFlags]);
    assert.equal(logs.code, 0, logs.stderr);
    assert.match(
      logs.stdout,
      /==> task 1, attempt [\w-]+ \(pod [\w-]+\) <==\n[\s\S]*hello from pod 2\n/,
    );
    // A pod's log goes with the pod. Deleted as the pod garbage collector would (the Job ended,
    // so no pod comes back), kubeface logs says why instead of only "no logs".
    await ctx.cluster.kubeConfig.makeApiClient(CoreV1Api).deleteCollectionNamespacedPod({
      namespace: ctx.namespace,
      labelSelector: `${JOB_LABEL}=${jobLabel(key)}`,
      gracePeriodSeconds: 0,
    });
    const gone = await pollUntil("the job's pods to go", async () => {
      const r = await kubeface(["logs", key, "1", ...logFlags]);
      return r.code === 0 ? undefined : r;
    });
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, new RegExp(`No pod of task 1 of job '${key}' is left in namespace`));
    assert.match(gone.stderr, /--ttl-after-finished/);
    assert.match(gone.stderr, /--terminated-pod-gc-threshold/);
    assert.equal((await jobsOf(ctx, key)).length, 1);
    const cleanup = await kubeface(["cleanup", key, "-y", ...logFlags]);
    assert.equal(cleanup.code, 0, cleanup.stderr);
    assert.match(cleanup.stderr, /deleted Kubernetes Job .*\/kf-logs-/);
    await pollUntil(
      "the Kubernetes Job to go",
      async () => (await jobsOf(ctx, key)).length === 0 ? true : undefined,
    );
  },
);

kubernetesTest(
  "Ctrl-C without a terminal leaves the Kubernetes Job running and says how to attach",
  async (ctx) => {
    const key = `sigint-${crypto.randomUUID().slice(0, 6)}`;
    const master = spawnKubeface([
      "map",
      "-m",
      fixture("slow_squares.ts"),
      ...clusterFlags(ctx),
      "--job",
      key,
      "--parallelism",
      "2",
    ]);
    await waitFor(
      "the Kubernetes Job",
      async () => (await jobsOf(ctx, key)).length > 0 ? true : undefined,
      120_000,
    );
    master.kill("SIGINT");
    const out = await master.output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 130, stderr);
    assert.match(
      stderr,
      new RegExp(
        `leaving the Kubernetes Jobs of ${key} running; rerun with --job ${key} to attach`,
      ),
    );
    assert.equal((await jobsOf(ctx, key)).length, 1, "the Job still runs");
    const rerun = await kubeface([
      "map",
      "-m",
      fixture("slow_squares.ts"),
      ...clusterFlags(ctx),
      "--job",
      key,
      "-q",
    ]);
    assert.equal(rerun.code, 0, rerun.stderr);
    assert.equal(rerun.stdout.trimEnd().split("\n").length, 12);
  },
);
