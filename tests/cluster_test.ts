/**
 * The test cluster behaves like Kubernetes where kubeface depends on it: a real control plane
 * (etcd, kube-apiserver with RBAC, kube-controller-manager, kube-scheduler) and a real node
 * (kubelet, containerd, runc) that runs pods in containers of images built here. Needs
 * `KUBEFACE_TEST_KUBECONFIG` (see tests/infra/README.md); the tests are skipped without it, and
 * fail without it under CI.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  BatchV1Api,
  CoreV1Api,
  RbacAuthorizationV1Api,
  type V1ObjectMeta,
  VersionApi,
} from "@kubernetes/client-node";
import {
  clusterTest,
  kubectl,
  pollUntil,
  type TestCluster,
  withNamespace,
} from "./infra/cluster/cluster.ts";
import {
  createPod,
  denoEval,
  INDEX_LABEL,
  isTerminal,
  podSpec,
  shell,
  statusCode,
  waitForJob,
  waitForPod,
  waitForPodGone,
} from "./infra/cluster/pods.ts";
import { KUBERNETES_VERSION } from "./infra/cluster/versions.ts";

clusterTest(
  "the node is Ready and the server runs the pinned Kubernetes version",
  async (cluster) => {
    const { stdout } = await kubectl(cluster, ["version", "--output=json"]);
    const versions = JSON.parse(stdout);
    assert.equal(versions.serverVersion.gitVersion, KUBERNETES_VERSION);
    assert.equal(versions.clientVersion.gitVersion, KUBERNETES_VERSION);
    const code = await cluster.kubeConfig.makeApiClient(VersionApi).getCode();
    assert.equal(code.gitVersion, KUBERNETES_VERSION);

    const core = cluster.kubeConfig.makeApiClient(CoreV1Api);
    const node = await core.readNode({ name: cluster.nodeName });
    const ready = node.status?.conditions?.find((c) => c.type === "Ready");
    assert.equal(ready?.status, "True");
    assert.equal(ready?.reason, "KubeletReady");
    assert.deepEqual(node.spec?.taints ?? [], []);
    assert.equal(node.status?.nodeInfo?.kubeletVersion, KUBERNETES_VERSION);
    assert.match(node.status?.nodeInfo?.containerRuntimeVersion ?? "", /^containerd:\/\/2\./);
    assert.equal(node.status?.allocatable?.cpu, String(navigator.hardwareConcurrency));
    assert.equal(node.status?.allocatable?.pods, "110");
    const address = node.status?.addresses?.find((a) => a.type === "InternalIP")?.address ?? "";
    assert.doesNotMatch(address, /^(10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.|127\.)/);
  },
);

clusterTest(
  "an Indexed Job of 3 completions with parallelism 2 completes and each pod saw its own JOB_COMPLETION_INDEX",
  (cluster) =>
    withNamespace(cluster, "indexed-job", async (namespace) => {
      const batch = cluster.kubeConfig.makeApiClient(BatchV1Api);
      const core = cluster.kubeConfig.makeApiClient(CoreV1Api);
      const report = `
        const start = Date.now();
        await new Promise((resolve) => setTimeout(resolve, 1500));
        const index = Deno.env.get("JOB_COMPLETION_INDEX");
        console.log(JSON.stringify({ index, start, end: Date.now() }));`;
      await batch.createNamespacedJob({
        namespace,
        body: {
          metadata: { name: "squares" },
          spec: {
            completions: 3,
            parallelism: 2,
            completionMode: "Indexed",
            backoffLimit: 0,
            template: { spec: podSpec(denoEval(report)) },
          },
        },
      });

      const job = await waitForJob(cluster, {
        namespace,
        name: "squares",
        conditions: ["Complete", "Failed"],
      });
      assert.equal(job.status?.conditions?.find((c) => c.type === "Complete")?.status, "True");
      assert.equal(job.status?.succeeded, 3);
      assert.equal(job.status?.completedIndexes, "0-2");

      const pods = await core.listNamespacedPod({ namespace, labelSelector: "job-name=squares" });
      assert.equal(pods.items.length, 3);
      const runs = await Promise.all(pods.items.map(async (pod) => {
        const name = pod.metadata?.name ?? "";
        const log = await core.readNamespacedPodLog({ name, namespace });
        const run = JSON.parse(log.trim()) as { index: string; start: number; end: number };
        assert.equal(run.index, pod.metadata?.labels?.[INDEX_LABEL], `index seen by ${name}`);
        return run;
      }));
      assert.deepEqual(runs.map((run) => run.index).sort(), ["0", "1", "2"]);
      const concurrent = (run: { start: number; end: number }) =>
        runs.filter((other) => other.start < run.end && run.start < other.end).length;
      const most = Math.max(...runs.map(concurrent));
      assert.ok(most <= 2, `at most 2 pods ran at once, saw ${most}`);
    }),
);

clusterTest(
  "a pod exiting 3 ends Failed with exit code 3 and is not restarted",
  (cluster) =>
    withNamespace(cluster, "exit-code", async (namespace) => {
      const name = "exits-3";
      await createPod(cluster, { namespace, name, spec: podSpec(shell("echo failing; exit 3")) });

      const pod = await waitForPod(cluster, {
        namespace,
        name,
        what: "to finish",
        accept: isTerminal,
      });
      assert.equal(pod.status?.phase, "Failed");
      const status = pod.status?.containerStatuses?.[0];
      assert.equal(status?.restartCount, 0);
      assert.equal(status?.state?.terminated?.exitCode, 3);
      assert.equal(status?.state?.terminated?.reason, "Error");
      assert.ok(status?.state?.terminated?.startedAt, "startedAt is set");
      assert.ok(status?.state?.terminated?.finishedAt, "finishedAt is set");
    }),
);

clusterTest(
  "a pod requesting more memory than the node has stays Pending as Unschedulable",
  (cluster) =>
    withNamespace(cluster, "unschedulable", async (namespace) => {
      const name = "too-big";
      const spec = podSpec({ ...shell("exit 0"), resources: { requests: { memory: "64Gi" } } });
      await createPod(cluster, { namespace, name, spec });

      const unscheduled = (c: { type: string; status: string }) =>
        c.type === "PodScheduled" && c.status === "False";
      const pod = await waitForPod(cluster, {
        namespace,
        name,
        what: "to be found unschedulable",
        accept: (p) => p.status?.conditions?.some(unscheduled) ?? false,
      });
      const scheduled = pod.status?.conditions?.find((c) => c.type === "PodScheduled");
      assert.equal(scheduled?.reason, "Unschedulable");
      assert.match(scheduled?.message ?? "", /Insufficient memory/);
      assert.equal(pod.status?.phase, "Pending");
      assert.equal(pod.spec?.nodeName, undefined);
    }),
);

clusterTest(
  "a pod exceeding its memory limit is OOMKilled",
  (cluster) =>
    withNamespace(cluster, "oom", async (namespace) => {
      const hog = `
      const block = new Uint8Array(512 * 1024 * 1024).fill(1);
      console.log("allocated", block.length);
      await new Promise((resolve) => setTimeout(resolve, 60_000));`;
      const spec = podSpec({ ...denoEval(hog), resources: { limits: { memory: "200Mi" } } });
      await createPod(cluster, { namespace, name: "hog", spec });

      const pod = await waitForPod(cluster, {
        namespace,
        name: "hog",
        what: "to finish",
        accept: isTerminal,
      });
      assert.equal(pod.status?.phase, "Failed");
      const terminated = pod.status?.containerStatuses?.[0]?.state?.terminated;
      assert.equal(terminated?.reason, "OOMKilled");
      assert.equal(terminated?.exitCode, 137);
    }),
);

clusterTest(
  "a pod past its activeDeadlineSeconds is killed and fails with DeadlineExceeded",
  (cluster) =>
    withNamespace(cluster, "deadline", async (namespace) => {
      // A shell as PID 1 ignores SIGTERM unless it traps it: exit 143 shows SIGTERM arrived.
      const spec = podSpec(shell("trap 'exit 143' TERM; sleep 600 & wait"), {
        activeDeadlineSeconds: 2,
      });
      await createPod(cluster, { namespace, name: "slow", spec });

      const pod = await waitForPod(cluster, {
        namespace,
        name: "slow",
        what: "to finish",
        accept: isTerminal,
      });
      assert.equal(pod.status?.phase, "Failed");
      assert.equal(pod.status?.reason, "DeadlineExceeded");
      assert.equal(pod.status?.containerStatuses?.[0]?.state?.terminated?.exitCode, 143);
    }),
);

/** Start a pod whose shell waits until SIGTERM, then exits 143; return once it runs. */
async function startSleeper(
  cluster: TestCluster,
  pod: { namespace: string; name: string; metadata?: V1ObjectMeta },
): Promise<void> {
  const { namespace, name } = pod;
  const script = "trap 'echo got TERM; exit 143' TERM; echo ready; sleep 600 & wait";
  await createPod(cluster, { ...pod, spec: podSpec(shell(script)) });
  const core = cluster.kubeConfig.makeApiClient(CoreV1Api);
  // "ready" in the log: the trap is set.
  await pollUntil(`${name} to print ready`, async () => {
    const p = await core.readNamespacedPod({ name, namespace });
    if (p.status?.phase !== "Running") return undefined;
    const text = await core.readNamespacedPodLog({ name, namespace });
    return text.includes("ready") ? true : undefined;
  });
}

clusterTest(
  "deleting a running pod stops its container with SIGTERM and then removes the pod",
  (cluster) =>
    withNamespace(cluster, "delete", async (namespace) => {
      const core = cluster.kubeConfig.makeApiClient(CoreV1Api);
      await startSleeper(cluster, { namespace, name: "sleeper" });

      await core.deleteNamespacedPod({ name: "sleeper", namespace });

      await waitForPodGone(cluster, { namespace, name: "sleeper" });
    }),
);

clusterTest(
  "a deleted pod with a foreign finalizer reports its final state and keeps the finalizer",
  (cluster) =>
    withNamespace(cluster, "finalizer", async (namespace) => {
      const core = cluster.kubeConfig.makeApiClient(CoreV1Api);
      const name = "held";
      const finalizer = "kubeface.test/hold";
      await startSleeper(cluster, { namespace, name, metadata: { finalizers: [finalizer] } });

      try {
        await core.deleteNamespacedPod({ name, namespace });

        const what = "to report its final state";
        const pod = await waitForPod(cluster, { namespace, name, what, accept: isTerminal });
        assert.equal(pod.status?.phase, "Failed");
        assert.equal(pod.status?.containerStatuses?.[0]?.state?.terminated?.exitCode, 143);
        assert.ok(pod.metadata?.deletionTimestamp, "the pod is terminating");
        assert.deepEqual(pod.metadata?.finalizers, [finalizer]);
      } finally {
        const remove = [{ op: "remove", path: "/metadata/finalizers" }];
        await core.patchNamespacedPod({ name, namespace, body: remove });
      }
      await waitForPodGone(cluster, { namespace, name });
    }),
);

clusterTest(
  "kubectl logs shows what the process printed, also with --tail and --follow",
  (cluster) =>
    withNamespace(cluster, "logs", async (namespace) => {
      const name = "printer";
      // A pause between streams: containerd reads stdout and stderr through separate pipes, so
      // lines written to both within the same instant may be logged in either order.
      const script = "echo first line; sleep 1; echo to stderr >&2; sleep 1; echo last line";
      await createPod(cluster, { namespace, name, spec: podSpec(shell(script)) });
      await waitForPod(cluster, {
        namespace,
        name,
        what: "to start",
        accept: (p) => p.status?.phase !== "Pending",
      });

      const followed = await kubectl(cluster, ["logs", "--namespace", namespace, "--follow", name]);
      assert.equal(followed.code, 0, followed.stderr);
      assert.equal(followed.stdout, "first line\nto stderr\nlast line\n");

      await waitForPod(cluster, { namespace, name, what: "to finish", accept: isTerminal });
      const all = await kubectl(cluster, ["logs", "--namespace", namespace, name]);
      assert.equal(all.stdout, "first line\nto stderr\nlast line\n");
      const tail = await kubectl(cluster, ["logs", "--namespace", namespace, "--tail=1", name]);
      assert.equal(tail.stdout, "last line\n");
    }),
);

clusterTest(
  "a pod sees downward-API env and expanded $(VAR) references",
  (cluster) =>
    withNamespace(cluster, "env", async (namespace) => {
      const core = cluster.kubeConfig.makeApiClient(CoreV1Api);
      const name = "env-probe";
      const script = `
        const env = Deno.env.toObject();
        console.log(JSON.stringify({ env, args: Deno.args }));`;
      const field = (fieldPath: string) => ({ valueFrom: { fieldRef: { fieldPath } } });
      const spec = podSpec({
        command: ["deno", "eval", script, "--", "$(GREETING)", "$$(GREETING)"],
        env: [
          { name: "POD_NAME", ...field("metadata.name") },
          { name: "POD_NAMESPACE", ...field("metadata.namespace") },
          { name: "POD_UID", ...field("metadata.uid") },
          { name: "TEAM", ...field("metadata.labels['team']") },
          { name: "NODE", ...field("spec.nodeName") },
          { name: "GREETING", value: "hello $(POD_NAME)" },
        ],
      });
      await createPod(cluster, {
        namespace,
        name,
        spec,
        metadata: { labels: { team: "kubeface" } },
      });

      const pod = await waitForPod(cluster, {
        namespace,
        name,
        what: "to finish",
        accept: isTerminal,
      });
      assert.equal(pod.status?.phase, "Succeeded");
      const log = await core.readNamespacedPodLog({ name, namespace });
      const { env, args } = JSON.parse(log.trim());
      assert.equal(env.POD_NAME, name);
      assert.equal(env.POD_NAMESPACE, namespace);
      assert.equal(env.POD_UID, pod.metadata?.uid);
      assert.equal(env.TEAM, "kubeface");
      assert.equal(env.NODE, cluster.nodeName);
      assert.equal(env.GREETING, "hello env-probe");
      assert.deepEqual(args, ["hello env-probe", "$(GREETING)"]);
    }),
);

clusterTest(
  "a Job with podFailurePolicy FailIndex on exit code 3 and backoffLimitPerIndex fails that index at once and retries the others",
  (cluster) =>
    withNamespace(cluster, "fail-index", async (namespace) => {
      const batch = cluster.kubeConfig.makeApiClient(BatchV1Api);
      const core = cluster.kubeConfig.makeApiClient(CoreV1Api);
      // Index 0 exits 3 (FailIndex); index 1 exits 1 on its first attempt only; index 2 succeeds.
      const script = `case "$JOB_COMPLETION_INDEX" in
        0) exit 3 ;;
        1) [ "\${FAILURES:-0}" = 0 ] && exit 1; exit 0 ;;
        *) exit 0 ;;
      esac`;
      const failures = "metadata.annotations['batch.kubernetes.io/job-index-failure-count']";
      await batch.createNamespacedJob({
        namespace,
        body: {
          metadata: { name: "per-index" },
          spec: {
            completions: 3,
            parallelism: 3,
            completionMode: "Indexed",
            backoffLimitPerIndex: 1,
            podFailurePolicy: {
              rules: [{ action: "FailIndex", onExitCodes: { operator: "In", values: [3] } }],
            },
            template: {
              spec: podSpec({
                ...shell(script),
                env: [{ name: "FAILURES", valueFrom: { fieldRef: { fieldPath: failures } } }],
              }),
            },
          },
        },
      });

      const job = await waitForJob(cluster, {
        namespace,
        name: "per-index",
        conditions: ["Complete", "Failed"],
        timeoutMs: 180_000,
      });
      const failed = job.status?.conditions?.find((c) => c.type === "Failed");
      assert.equal(failed?.status, "True");
      assert.equal(failed?.reason, "FailedIndexes");
      assert.equal(job.status?.failedIndexes, "0");
      assert.equal(job.status?.completedIndexes, "1,2");
      assert.equal(job.status?.succeeded, 2);
      assert.equal(job.status?.failed, 2);

      const pods = await core.listNamespacedPod({ namespace, labelSelector: "job-name=per-index" });
      const attempts = (index: string) =>
        pods.items.filter((p) => p.metadata?.labels?.[INDEX_LABEL] === index);
      assert.equal(attempts("0").length, 1, "index 0 is not retried");
      const first = attempts("0")[0]?.status?.containerStatuses?.[0];
      assert.equal(first?.state?.terminated?.exitCode, 3);
      assert.equal(attempts("1").length, 2, "index 1 is retried once");
      assert.equal(attempts("2").length, 1);
    }),
);

clusterTest(
  "a user limited by a Role gets 403 outside it",
  (cluster) =>
    withNamespace(cluster, "rbac", async (namespace) => {
      const rbac = cluster.kubeConfig.makeApiClient(RbacAuthorizationV1Api);
      await rbac.createNamespacedRole({
        namespace,
        body: {
          metadata: { name: "pod-reader" },
          rules: [{ apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "watch"] }],
        },
      });
      await rbac.createNamespacedRoleBinding({
        namespace,
        body: {
          metadata: { name: "pod-reader" },
          roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "pod-reader" },
          subjects: [{
            apiGroup: "rbac.authorization.k8s.io",
            kind: "User",
            name: cluster.userName,
          }],
        },
      });
      const asUser = cluster.userKubeConfig.makeApiClient(CoreV1Api);
      const status = async (call: () => Promise<unknown>): Promise<number | undefined> => {
        try {
          await call();
          return 200;
        } catch (error) {
          return statusCode(error);
        }
      };

      // The authorizer learns of the binding through a watch; wait until it applies.
      await pollUntil("the RoleBinding to take effect", async () => {
        const code = await status(() => asUser.listNamespacedPod({ namespace }));
        return code === 200 ? true : undefined;
      });
      assert.equal(await status(() => asUser.listNamespacedPod({ namespace: "default" })), 403);
      assert.equal(await status(() => asUser.listNamespacedSecret({ namespace })), 403);
      const pod = { metadata: { name: "x" }, spec: podSpec(shell("true")) };
      assert.equal(await status(() => asUser.createNamespacedPod({ namespace, body: pod })), 403);
      const args = ["auth", "can-i", "list", "pods", "--namespace", "default"];
      const canI = await kubectl(cluster, args, cluster.userKubeconfig);
      assert.equal(canI.stdout.trim(), "no");
    }),
);
