/**
 * kubeface on the KWOK pool of the test cluster: simulated kubelets beside the real node, with
 * the real apiserver, Job controller and scheduler (see tests/infra/cluster/kwok.ts). KWOK pods
 * run no code; tests/infra/kwok_results.ts stores their results as workers would.
 *
 * @module
 */

import assert from "node:assert/strict";
import { BatchV1Api, type V1Job } from "@kubernetes/client-node";
import { KubernetesBackend } from "../lib/backends/kubernetes/kubernetes.ts";
import { JOB_LABEL, jobLabel } from "../lib/backends/kubernetes/names.ts";
import { SPLIT_ANNOTATION } from "../lib/backends/kubernetes/split.ts";
import { readJson } from "../lib/format/json.ts";
import type { JobStatus } from "../lib/format/status.ts";
import { BackendError, Client, JobLayout } from "../mod.ts";
import { kubectl, pollUntil, withNamespace } from "./infra/cluster/cluster.ts";
import { CountingKubeConfig } from "./support/kubeconfig.ts";
import { collect, failure, fixture } from "./support/jobs.ts";
import { resultCounts, withKwok } from "./support/kwok.ts";
import { jobsOf, kubernetesTest, type KubernetesTestContext, podsOf } from "./support/targets.ts";

const calm = { speculationPercent: 0, retryDelayMs: 10 };

kubernetesTest(
  "a 200-task map runs on KWOK nodes to one stored result per task, in input order",
  async (ctx) => {
    await withKwok(ctx, { nodes: 4, compute: (x) => (x as number) * 3 }, async (kwok) => {
      const client = new Client({
        storage: ctx.storage,
        backend: new KubernetesBackend(kwok.kubernetes),
      });
      const inputs = Array.from({ length: 200 }, (_, i) => i);
      const run = client.map(fixture("echo.ts"), { ...calm, parallelism: 200, inputs });
      const values = await collect(run);
      // The finished Job keeps its pods (until its TTL): where did they run?
      const pods = await podsOf(ctx, run.job);
      const seenOn = new Set(pods.map((pod) => pod.spec?.nodeName ?? "unscheduled"));
      assert.deepEqual(values, inputs.map((x) => x * 3), "the writer's values, in input order");
      assert.equal(pods.length, 200, "one pod per task");
      for (const node of seenOn) assert.match(node, /^kwok-node-\d+$/, "only KWOK nodes");
      const counts = await resultCounts(kwok.storage, new JobLayout(run.job).resultsPrefix);
      assert.equal(counts.size, 200);
      for (const [task, count] of counts) {
        assert.deepEqual(count, { ok: 1, error: 0 }, `task ${task}`);
      }
      assert.equal(kwok.writer.stored.size, 200);
      assert.ok([...kwok.writer.stored.values()].every((n) => n === 1));
    });
  },
  { bootstraps: ["stock"] },
);

/** Kubernetes Jobs of a kubeface job, as the admin sees them, by split position. */
async function splitJobsOf(ctx: KubernetesTestContext, key: string): Promise<V1Job[]> {
  const jobs = await jobsOf(ctx, key);
  const position = (job: V1Job) =>
    Number(job.metadata?.annotations?.[SPLIT_ANNOTATION]?.split("/")[1] ?? -1);
  return jobs.sort((a, b) => position(a) - position(b));
}

kubernetesTest(
  "a map wider than one Kubernetes Job runs as several that share its parallelism, in order",
  async (ctx) => {
    await withKwok(ctx, { nodes: 4, compute: (x) => (x as number) + 1 }, async (kwok) => {
      const kubeConfig = new CountingKubeConfig();
      kubeConfig.loadFromFile(ctx.cluster.userKubeconfig);
      const client = new Client({
        storage: ctx.storage,
        backend: new KubernetesBackend(
          { ...kwok.kubernetes, maxCompletionsPerJob: 100 },
          kubeConfig,
        ),
      });
      const inputs = Array.from({ length: 250 }, (_, i) => i);
      const run = client.map(fixture("echo.ts"), { ...calm, parallelism: 120, inputs });
      const values = await collect(run);
      assert.deepEqual(values, inputs.map((x) => x + 1), "in input order across the Jobs");
      const jobs = await splitJobsOf(ctx, run.job);
      assert.deepEqual(jobs.map((j) => j.spec?.completions), [100, 100, 50]);
      const group = jobs[0]!.metadata!.name!;
      assert.deepEqual(
        jobs.map((j) => j.metadata?.annotations?.[SPLIT_ANNOTATION]),
        [`${group}/0/120`, `${group}/1/120`, `${group}/2/120`],
      );
      await pollUntil(
        "every Job to complete",
        async () =>
          (await splitJobsOf(ctx, run.job)).every((j) =>
              j.status?.conditions?.some((c) => c.type === "Complete" && c.status === "True")
            )
            ? true
            : undefined,
        { timeoutMs: 120_000 },
      );
      const creates = kubeConfig.calls.filter((c) => c === "createNamespacedJob").length;
      assert.equal(creates, 4, "one dry run, then one create per Job");
      const patches = kubeConfig.calls.filter((c) => c === "patchNamespacedJob").length;
      assert.ok(patches <= 1 + 2 * 11, `${patches} patches: at most 11 raises per later Job`);
      const status = await readJson<JobStatus>(kwok.storage, new JobLayout(run.job).statusJson);
      assert.equal(status.tasks.length, 250, "one status page for the whole map");
      assert.equal(status.counts.done, 250);
      const counts = await resultCounts(kwok.storage, new JobLayout(run.job).resultsPrefix);
      assert.equal(counts.size, 250);
      for (const [task, count] of counts) {
        assert.deepEqual(count, { ok: 1, error: 0 }, `task ${task}`);
      }
    });
  },
  { bootstraps: ["stock"] },
);

kubernetesTest(
  "a later Job of a split map whose raise is refused says why, and is raised once it may be",
  async (ctx) => {
    await withKwok(ctx, { nodes: 4, runtimeMs: 8_000 }, async (kwok) => {
      const client = new Client({
        storage: ctx.storage,
        backend: new KubernetesBackend({ ...kwok.kubernetes, maxCompletionsPerJob: 3 }),
      });
      const inputs = Array.from({ length: 6 }, (_, i) => i);
      // The first Job takes all 3 slots; the second starts at 0 and waits for its raise.
      const run = client.map(fixture("echo.ts"), { ...calm, parallelism: 3, inputs });
      const values = collect(run);
      values.catch(() => {});
      await pollUntil(
        "both Jobs",
        async () => (await splitJobsOf(ctx, run.job)).length === 2 ? true : undefined,
      );
      // The master may no longer patch Jobs (it could when it checked, with a dry run).
      const role = ["-n", ctx.namespace, "patch", "role", "kubeface-master", "--type=json"];
      const verbs = (list: string[]) =>
        JSON.stringify([{ op: "replace", path: "/rules/0/verbs", value: list }]);
      const revoke = await kubectl(ctx.cluster, [
        ...role,
        `--patch=${verbs(["create", "get", "list", "watch", "delete"])}`,
      ]);
      assert.equal(revoke.code, 0, revoke.stderr);
      const detail = await pollUntil(
        "the waiting tasks to say why",
        async () => {
          const status = await readJson<JobStatus>(
            kwok.storage,
            new JobLayout(run.job).statusJson,
          ).catch(() => undefined);
          return status?.tasks[4]?.attempts.at(-1)?.detail?.match(/raise it to 3.*/)?.[0];
        },
        { timeoutMs: 120_000 },
      );
      assert.match(detail, new RegExp(`raise it to 3 \\(retrying every second\\).*forbidden`, "i"));
      assert.equal((await splitJobsOf(ctx, run.job))[1]!.spec?.parallelism, 0, "not raised yet");

      const restore = await kubectl(ctx.cluster, [
        ...role,
        `--patch=${verbs(["create", "get", "list", "watch", "delete", "patch"])}`,
      ]);
      assert.equal(restore.code, 0, restore.stderr);
      // No slot ends to trigger the raise now: only the retry can.
      assert.deepEqual(await values, inputs);
      assert.equal((await splitJobsOf(ctx, run.job))[1]!.spec?.parallelism, 3);
    });
  },
  { bootstraps: ["stock"] },
);

kubernetesTest(
  "a master stopped mid-map and run again attaches to every Job of a split map",
  async (ctx) => {
    await withKwok(ctx, { nodes: 4, runtimeMs: 1500 }, async (kwok) => {
      const key = `split-attach-${crypto.randomUUID().slice(0, 6)}`;
      const options = {
        storage: ctx.storage,
        backend: new KubernetesBackend({ ...kwok.kubernetes, maxCompletionsPerJob: 100 }),
      };
      const inputs = Array.from({ length: 300 }, (_, i) => i);
      const map = { ...calm, job: key, parallelism: 60, inputs };
      const first = new Client(options).map(fixture("echo.ts"), map);
      const consuming = collect(first).catch((error) => error);
      await pollUntil(
        "30 stored results",
        () => kwok.writer.stored.size >= 30 ? Promise.resolve(true) : Promise.resolve(undefined),
        { timeoutMs: 120_000 },
      );
      await first.cancel({ stopRunning: false }); // the Jobs run on, as after a killed master
      await consuming;
      assert.ok(kwok.writer.stored.size < 300, "the master stopped before the map ended");
      const values = await collect(new Client(options).map(fixture("echo.ts"), map));
      assert.deepEqual(values, inputs);
      const jobs = await splitJobsOf(ctx, key);
      assert.deepEqual(jobs.map((j) => j.spec?.completions), [100, 100, 100], "no further Job");
      const counts = await resultCounts(kwok.storage, new JobLayout(key).resultsPrefix);
      assert.equal(counts.size, 300);
      for (const [task, count] of counts) {
        assert.deepEqual(count, { ok: 1, error: 0 }, `task ${task}`);
      }
      assert.ok([...kwok.writer.stored.values()].every((n) => n === 1), "nothing ran twice");
    });
  },
  { bootstraps: ["stock"] },
);

kubernetesTest(
  "node loss, evictions and a NoExecute taint during 25 s tasks: one result per task, none counted, none recomputed",
  async (ctx) => {
    await withKwok(ctx, { nodes: 10, runtimeMs: 25_000 }, async (kwok) => {
      const client = new Client({
        storage: ctx.storage,
        backend: new KubernetesBackend(kwok.kubernetes),
      });
      const inputs = Array.from({ length: 200 }, (_, i) => i);
      // No retries: a disruption counted against them would fail its task, and so the map.
      const run = client.map(fixture("echo.ts"), {
        ...calm,
        maxRetries: 0,
        parallelism: 200,
        inputs,
      });
      const consuming = collect(run);
      const [lost, tainted] = ["kwok-node-0", "kwok-node-1"];
      try {
        await pollUntil(
          "every pod Running",
          () => Promise.resolve(kwok.writer.podsSeen >= 200 ? true : undefined),
          { timeoutMs: 300_000 },
        );
        // 10 % of the nodes vanish (their workers die with them), one node is drained with a
        // NoExecute taint, and five pods elsewhere are evicted through the Eviction API.
        await kwok.writer.loseNode(lost!);
        await kwok.writer.loseNode(tainted!);
        await kubectl(ctx.cluster, ["delete", "node", lost!, "--wait=false"]);
        await kubectl(ctx.cluster, ["taint", "node", tainted!, "kubeface.dev/drain=now:NoExecute"]);
        const victims = (await podsOf(ctx, run.job)).filter((pod) =>
          pod.spec?.nodeName !== lost && pod.spec?.nodeName !== tainted &&
          pod.status?.phase === "Running"
        ).slice(0, 5);
        for (const pod of victims) {
          await kwok.writer.evict(pod.metadata!.name!);
        }
        const values = await consuming;
        assert.deepEqual(values, inputs, "every task's value, in order");
      } finally {
        await kubectl(ctx.cluster, ["taint", "node", tainted!, "kubeface.dev/drain-"]);
      }
      const counts = await resultCounts(kwok.storage, new JobLayout(run.job).resultsPrefix);
      assert.equal(counts.size, 200);
      for (const [task, count] of counts) {
        assert.deepEqual(count, { ok: 1, error: 0 }, `task ${task}`);
      }
      assert.ok([...kwok.writer.stored.values()].every((n) => n === 1), "nothing stored twice");
      const status = await readJson<JobStatus>(kwok.storage, new JobLayout(run.job).statusJson);
      const delays: number[] = [];
      let disrupted = 0;
      for (const task of status.tasks) {
        const outcomes = task.attempts.map((a) => a.outcome);
        assert.equal(outcomes.filter((o) => o === "ok").length, 1, `task ${task.task}: one ok`);
        assert.ok(
          outcomes.every((o) => o === "ok" || o === "disrupted"),
          `task ${task.task}: no failure counted (${outcomes.join(", ")})`,
        );
        for (const [i, attempt] of task.attempts.entries()) {
          if (attempt.outcome !== "disrupted") continue;
          disrupted++;
          const next = task.attempts[i + 1];
          if (attempt.endedAt && next?.startedAt) {
            delays.push((Date.parse(next.startedAt) - Date.parse(attempt.endedAt)) / 1000);
          }
        }
      }
      assert.ok(disrupted >= 6, `${disrupted} attempts disrupted`);
      delays.sort((a, b) => a - b);
      // deno-lint-ignore no-console
      console.log(
        `disruptions: ${disrupted} attempts disrupted; the next attempt Running after the ` +
          `disruption was seen: median ${delays[Math.floor(delays.length / 2)]} s, max ${
            delays.at(-1)
          } s (${delays.length} measured)`,
      );
    });
  },
  { bootstraps: ["stock"] },
);

kubernetesTest(
  "a split map under a Role without patch on Jobs fails at once, naming the fix, and leaves no Job",
  async (ctx) => {
    await withNamespace(ctx.cluster, "kf-nopatch", async (namespace) => {
      const rbac = await Deno.readTextFile(new URL("../docs/rbac.yaml", import.meta.url));
      const old = rbac.replace(', "patch"]', "]");
      assert.notEqual(old, rbac, "docs/rbac.yaml grants patch on Jobs");
      const file = await Deno.makeTempFile({ suffix: ".yaml" });
      try {
        await Deno.writeTextFile(file, old);
        for (
          const args of [
            ["apply", "-n", namespace, "-f", file],
            [
              "create",
              "rolebinding",
              "m",
              "-n",
              namespace,
              "--role=kubeface-master",
              `--user=${ctx.cluster.userName}`,
            ],
          ]
        ) {
          const r = await kubectl(ctx.cluster, args);
          assert.equal(r.code, 0, r.stderr);
        }
      } finally {
        await Deno.remove(file);
      }
      const key = `nopatch-${crypto.randomUUID().slice(0, 6)}`;
      const kubeConfig = new CountingKubeConfig();
      kubeConfig.loadFromFile(ctx.cluster.userKubeconfig);
      const client = new Client({
        storage: ctx.storage,
        backend: new KubernetesBackend(
          { ...ctx.client.kubernetes, namespace, maxCompletionsPerJob: 2 },
          kubeConfig,
        ),
      });
      const error = await failure(
        client.map(fixture("echo.ts"), { ...calm, job: key, inputs: [1, 2, 3] }),
      );
      assert.ok(error instanceof BackendError, String(error));
      assert.match(
        (error as Error).message,
        /^Cannot patch Jobs in namespace 'kf-nopatch-[^']+': user 'kubeface-test-user' is not allowed .*grant the Role in docs\/rbac\.yaml/,
      );
      const creates = kubeConfig.calls.filter((c) => c === "createNamespacedJob").length;
      assert.equal(creates, 3, "a dry run and the group's two Jobs: nothing run again after it");
      const batch = ctx.cluster.kubeConfig.makeApiClient(BatchV1Api);
      await pollUntil("the Jobs to go", async () =>
        (await batch.listNamespacedJob({
            namespace,
            labelSelector: `${JOB_LABEL}=${jobLabel(key)}`,
          })).items.length === 0
          ? true
          : undefined, { timeoutMs: 180_000 });
    });
  },
  { bootstraps: ["stock"] },
);

kubernetesTest(
  "a pod evicted while the master may not watch pods: once its index failed, the master asks for its pods and runs the task again, not counted",
  async (ctx) => {
    await withKwok(ctx, { nodes: 2, runtimeMs: 15_000 }, async (kwok) => {
      // Only the Job's failed index, and a list of the index's pods, can tell what happened.
      const podVerbs = (verbs: string[]) =>
        `--patch=${JSON.stringify([{ op: "replace", path: "/rules/1/verbs", value: verbs }])}`;
      const role = ["-n", ctx.namespace, "patch", "role", "kubeface-master", "--type=json"];
      const revoke = await kubectl(ctx.cluster, [
        ...role,
        podVerbs(["get", "list", "delete", "deletecollection"]),
      ]);
      assert.equal(revoke.code, 0, revoke.stderr);
      const client = new Client({
        storage: ctx.storage,
        backend: new KubernetesBackend(kwok.kubernetes),
      });
      const inputs = [0, 1];
      const run = client.map(fixture("echo.ts"), {
        ...calm,
        maxRetries: 0,
        parallelism: 2,
        inputs,
      });
      const consuming = collect(run);
      try {
        const victim = await pollUntil(
          "task 1's pod Running",
          async () =>
            (await podsOf(ctx, run.job)).find((pod) =>
              pod.metadata?.labels?.["batch.kubernetes.io/job-completion-index"] === "1" &&
              pod.status?.phase === "Running"
            ),
          { timeoutMs: 120_000 },
        );
        await kwok.writer.evict(victim.metadata!.name!);
        // With maxRetries 0, an eviction taken for a crash would fail the map.
        assert.deepEqual(await consuming, inputs);
      } finally {
        consuming.catch(() => {});
        const restore = await kubectl(ctx.cluster, [
          ...role,
          podVerbs(["get", "list", "watch", "delete", "deletecollection"]),
        ]);
        assert.equal(restore.code, 0, restore.stderr);
      }
      const status = await readJson<JobStatus>(kwok.storage, new JobLayout(run.job).statusJson);
      assert.deepEqual(status.tasks[0]!.attempts.map((a) => a.outcome), ["ok"]);
      const [evicted, rerun] = status.tasks[1]!.attempts;
      assert.equal(evicted?.outcome, "disrupted", JSON.stringify(evicted));
      assert.match(evicted?.detail ?? "", /disrupted|deleted as it ran/);
      assert.equal(rerun?.outcome, "ok");
      assert.equal(status.tasks[1]!.attempts.length, 2);
    });
  },
  { bootstraps: ["stock"] },
);
