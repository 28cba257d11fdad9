/**
 * What only a real node can show about kubeface's pods: the container's
 * user and read-only root, the kernel's OOM killer, SIGTERM and SIGKILL on
 * deletion, logs served by the kubelet, `activeDeadlineSeconds`, and an
 * image that cannot be pulled. Pods run in containers under the test
 * cluster's kubelet (containerd, runc), with the stock Deno image and with
 * the worker image.
 *
 * @module
 */

import assert from "node:assert/strict";
import { CoreV1Api } from "@kubernetes/client-node";
import { Client, WorkerCrashError } from "../mod.ts";
import { clusterTest, kubectl, pollUntil, withNamespace } from "./infra/cluster/cluster.ts";
import { createPod, isTerminal, podSpec, waitForPod } from "./infra/cluster/pods.ts";
import { collect, failure, fixture, MARKER_ROOT } from "./support/jobs.ts";
import {
  clusterFlags,
  kubernetesTest,
  type KubernetesTestContext,
  podsOf,
} from "./support/targets.ts";
import { kubeface } from "./support/cli.ts";

const calm = { speculationPercent: 0, retryDelayMs: 10 };

/** Client options of the context with more Kubernetes options. */
function withOptions(ctx: KubernetesTestContext, more: Record<string, unknown>) {
  return { ...ctx.client, kubernetes: { ...ctx.client.kubernetes, ...more } };
}

kubernetesTest(
  "a task runs as uid 1993 on a read-only root and can write only under /tmp",
  async (ctx) => {
    const [seen] = await collect(new Client(ctx.client).map<string[], {
      uid: number | null;
      writes: Record<string, string>;
    }>(fixture("write_probe.ts"), {
      ...calm,
      permissions: ["--allow-sys", "--allow-write"],
      inputs: [["/tmp/probe", "/probe", "/etc/probe", "/deno-dir/probe"]],
    }));
    assert.equal(seen!.uid, 1993);
    assert.equal(seen!.writes["/tmp/probe"], "ok");
    for (const path of ["/probe", "/etc/probe", "/deno-dir/probe"]) {
      assert.match(seen!.writes[path]!, /Read-only file system/, `writing ${path}`);
    }
  },
);

kubernetesTest(
  "a task allocating past --memory is OOMKilled by the kernel and kubeface says so",
  async (ctx) => {
    const client = new Client(withOptions(ctx, { memory: "256Mi" }));
    const run = client.map(fixture("hog.ts"), { ...calm, maxRetries: 0 });
    const error = await failure(run);
    assert.ok(error instanceof WorkerCrashError, `expected a WorkerCrashError, got ${error}`);
    assert.equal(error.kind, "crash");
    assert.match(
      error.message,
      /^Task 0 \(input 0\) crashed 1 time\(s\) without a result: pod \S+ ran out of memory \(OOMKilled, limit 256Mi\)$/,
    );
    const [pod] = await podsOf(ctx, run.job);
    const terminated = pod?.status?.containerStatuses?.[0]?.state?.terminated;
    assert.equal(terminated?.reason, "OOMKilled");
  },
);

kubernetesTest(
  "a pod past activeDeadlineSeconds is ended by Kubernetes and the task times out",
  async (ctx) => {
    const client = new Client(withOptions(ctx, { activeDeadlineSeconds: 3 }));
    const run = client.map(fixture("forever.ts"), { ...calm, maxRetries: 0 });
    const error = await failure(run);
    assert.ok(error instanceof WorkerCrashError, `expected a WorkerCrashError, got ${error}`);
    assert.equal(error.kind, "timeout");
    assert.match(error.message, /ran past its deadline of 3 s \(DeadlineExceeded\)$/);
    const [pod] = await podsOf(ctx, run.job);
    assert.equal(pod?.status?.phase, "Failed");
    assert.equal(pod?.status?.reason, "DeadlineExceeded");
  },
);

kubernetesTest(
  "kubeface logs and kubectl logs show what the worker's container printed",
  async (ctx) => {
    const key = `print-${crypto.randomUUID().slice(0, 6)}`;
    const run = await kubeface([
      "run",
      "-e",
      "(console.log('printed in the container:', value), value)",
      "-i",
      "[7]",
      ...clusterFlags(ctx),
      "--job",
      key,
      "-q",
    ]);
    assert.equal(run.code, 0, run.stderr);
    const [pod] = await podsOf(ctx, key);
    const name = pod!.metadata!.name!;
    const fromKubectl = await kubectl(ctx.cluster, [
      "logs",
      "--namespace",
      ctx.namespace,
      name,
      "--container",
      "worker",
    ]);
    assert.equal(fromKubectl.code, 0, fromKubectl.stderr);
    assert.match(fromKubectl.stdout, /^printed in the container: 7$/m);
    const fromKubeface = await kubeface([
      "logs",
      key,
      "0",
      "--storage",
      ctx.storage,
      "--kubeconfig",
      ctx.cluster.userKubeconfig,
      "--namespace",
      ctx.namespace,
    ]);
    assert.equal(fromKubeface.code, 0, fromKubeface.stderr);
    assert.match(
      fromKubeface.stdout,
      new RegExp(
        `==> task 0, attempt [\\w-]+ \\(pod ${name}\\) <==\\n[\\s\\S]*printed in the container: 7\\n`,
      ),
    );
  },
);

kubernetesTest(
  "an image that does not exist fails the task with the image-pull reason after --unstartable-timeout",
  async (ctx) => {
    // A registry on a closed loopback port: the pull fails at once, and nothing leaves the host.
    const image = "127.0.0.1:9/kubeface/missing:1";
    const client = new Client(
      withOptions(ctx, {
        image,
        workerImage: false,
        imagePullPolicy: "IfNotPresent",
        unstartableTimeoutMs: 15_000,
      }),
    );
    const run = client.map(fixture("half.ts"), { ...calm, inputs: [2] });
    const error = await failure(run);
    assert.ok(error instanceof WorkerCrashError, `expected a WorkerCrashError, got ${error}`);
    assert.equal(error.kind, "infrastructure");
    const match = error.message.match(
      /^Task 0 \(input 0\) could not run: cannot pull image 127\.0\.0\.1:9\/kubeface\/missing:1 \((ErrImagePull|ImagePullBackOff)\): [\s\S]* \(for (\d+) s\)$/,
    );
    assert.ok(match, error.message);
    assert.ok(Number(match[2]) >= 15, `failed after ${match[2]} s, not after the 15 s allowed`);
  },
  { bootstraps: ["stock"] },
);

clusterTest(
  "deleting a pod sends its container SIGTERM, then SIGKILL once the grace period is over",
  (cluster) =>
    withNamespace(cluster, "grace", async (namespace) => {
      const core = cluster.kubeConfig.makeApiClient(CoreV1Api);
      await Deno.mkdir(MARKER_ROOT, { recursive: true });
      const markers = await Deno.makeTempDir({ dir: MARKER_ROOT, prefix: "grace-" });
      try {
        // Records SIGTERM and keeps running: only SIGKILL ends it.
        const code = `
          Deno.addSignalListener("SIGTERM", () => Deno.writeTextFileSync("/markers/term", "TERM"));
          Deno.writeTextFileSync("/markers/ready", "ready");
          setInterval(() => {}, 1000);`;
        const name = "stubborn";
        const finalizer = "kubeface.test/hold";
        await createPod(cluster, {
          namespace,
          name,
          metadata: { finalizers: [finalizer] },
          spec: podSpec({
            command: ["deno", "eval", code],
            volumeMounts: [{ name: "markers", mountPath: "/markers" }],
          }, {
            terminationGracePeriodSeconds: 3,
            volumes: [{ name: "markers", hostPath: { path: markers } }],
          }),
        });
        await pollUntil("the container to handle SIGTERM", async () => {
          return await Deno.stat(`${markers}/ready`).then(() => true, () => undefined);
        });
        try {
          await core.deleteNamespacedPod({ name, namespace });
          const pod = await waitForPod(cluster, {
            namespace,
            name,
            what: "to end",
            accept: isTerminal,
          });
          assert.equal(await Deno.readTextFile(`${markers}/term`), "TERM", "SIGTERM arrived");
          const terminated = pod.status?.containerStatuses?.[0]?.state?.terminated;
          assert.equal(terminated?.exitCode, 137, "SIGKILL ended it");
          // The API server set deletionTimestamp to the deletion plus the grace period.
          assert.ok(
            new Date(terminated!.finishedAt!).getTime() >=
              new Date(pod.metadata!.deletionTimestamp!).getTime(),
            `killed at ${terminated?.finishedAt}, before the grace period ended at ${pod.metadata?.deletionTimestamp}`,
          );
        } finally {
          const remove = [{ op: "remove", path: "/metadata/finalizers" }];
          await core.patchNamespacedPod({ name, namespace, body: remove });
        }
      } finally {
        await Deno.remove(markers, { recursive: true });
      }
    }),
);
