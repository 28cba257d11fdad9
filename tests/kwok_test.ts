/**
 * kubeface on the KWOK pool of the test cluster: simulated kubelets beside the real node, with
 * the real apiserver, Job controller and scheduler (see tests/infra/cluster/kwok.ts). KWOK pods
 * run no code; tests/infra/kwok_results.ts stores their results as workers would.
 *
 * @module
 */

import assert from "node:assert/strict";
import { CoreV1Api } from "@kubernetes/client-node";
import { KubernetesBackend } from "../lib/backends/kubernetes/kubernetes.ts";
import { JOB_LABEL, jobLabel } from "../lib/backends/kubernetes/names.ts";
import { Client, JobLayout } from "../mod.ts";
import { collect, fixture } from "./support/jobs.ts";
import { resultCounts, withKwok } from "./support/kwok.ts";
import { kubernetesTest } from "./support/targets.ts";

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
      const seenOn = new Set<string>();
      const core = ctx.cluster.kubeConfig.makeApiClient(CoreV1Api);
      const watching = (async () => {
        // Where the pods run, while they exist (finished Jobs delete themselves).
        for (let i = 0; i < 20 && seenOn.size === 0; i++) {
          const pods = await core.listNamespacedPod({
            namespace: ctx.namespace,
            labelSelector: `${JOB_LABEL}=${jobLabel(run.job)}`,
          });
          for (const pod of pods.items) if (pod.spec?.nodeName) seenOn.add(pod.spec.nodeName);
          await new Promise((resolve) => setTimeout(resolve, 250));
        }
      })();
      const values = await collect(run);
      await watching;
      assert.deepEqual(values, inputs.map((x) => x * 3), "the writer's values, in input order");
      assert.ok(seenOn.size > 0, "some pod was seen bound to a node");
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
