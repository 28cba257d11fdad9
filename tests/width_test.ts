/**
 * Width: 2,000-task maps (10,000 and more with `KUBEFACE_WIDTH_TEST_TASKS`) against the real
 * control plane, on a pool of 100 KWOK nodes (simulated kubelets; the apiserver, the Job
 * controller and the scheduler are real): one counts results and API requests, the other loses
 * 10 % of the nodes, drains two and evicts pods in its middle. They run on a cluster of their
 * own whose controller-manager may make 300 requests a second (at Kubernetes' default of 20 it
 * finishes about 10 tasks a second); bench/width.ts measures both rates.
 *
 * @module
 */

import assert from "node:assert/strict";
import { clusterTest } from "./infra/cluster/cluster.ts";
import { runWidthInSubprocess } from "./support/width.ts";

/** Run a cluster script (it needs more permissions than tests get: /proc, cgroups). */
async function clusterScript(script: "up" | "down", args: string[]): Promise<void> {
  const file = new URL(`./infra/cluster/${script}.ts`, import.meta.url).pathname;
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", file, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!r.success) {
    throw new Error(
      `cluster:${script} ${args.join(" ")} failed: ${new TextDecoder().decode(r.stderr)}`,
    );
  }
}

/**
 * Tasks of the map: 2,000, or `KUBEFACE_WIDTH_TEST_TASKS` (the assertions hold for any even
 * number). KWOK and the test's result writer finish about 4 tasks a second on a busy 2-core
 * machine: 10,000 take 40 minutes there, more than CI may spend on the whole suite.
 */
const TASKS = Number(Deno.env.get("KUBEFACE_WIDTH_TEST_TASKS") ?? 2_000);

clusterTest("wide maps on a pool of KWOK nodes", async (_cluster, t) => {
  const dir = await Deno.makeTempDir({ prefix: "kubeface-width-cluster-" });
  try {
    await clusterScript("up", ["--dir", dir, "--kwok-nodes", "100", "--kube-api-qps", "300"]);

    await t.step(
      "one stored result per task, with a constant of API requests per Job",
      async () => {
        const report = await runWidthInSubprocess({
          dir,
          tasks: TASKS,
          nodes: 100,
          maxCompletionsPerJob: TASKS / 2,
        });
        assert.equal(report.tasksWithOneResult, TASKS, "every task exactly one stored result");
        assert.equal(report.duplicateWrites, 0, "no attempt stored twice");
        assert.equal(report.jobs, 2, "half the tasks per Job: two Kubernetes Jobs");
        assert.equal(report.master.results, TASKS);
        const { watchRequests, totalRequests, requests } = report;
        const perJob = totalRequests - watchRequests;
        // A dry run, and per Job a create plus at most 11 parallelism raises; lists of the two
        // informers (again after a 410) and a Job list at attach: none of it grows with tasks.
        assert.ok(
          perJob <= 8 + 12 * report.jobs,
          `${perJob} requests besides watches for ${report.jobs} Jobs: ${JSON.stringify(requests)}`,
        );
        assert.equal(requests["create jobs"], 2);
        assert.equal(requests["create pods"] ?? 0, 0, "the master creates no pod");
        assert.equal(requests["delete pods"] ?? 0, 0, "nor deletes one");
      },
    );

    await t.step(
      "10 % of the nodes deleted, two drained and 20 pods evicted mid-map: one result per task, none counted, none recomputed",
      async () => {
        const report = await runWidthInSubprocess({
          dir,
          tasks: TASKS,
          nodes: 100,
          // With maxRetries 0: a disruption counted against the retries would fail the map.
          disrupt: { after: 0.3, deleteNodes: 0.1, taintNodes: 2, evictPods: 20 },
        });
        const d = report.disruption!;
        assert.equal(d.nodesDeleted, 10);
        assert.equal(d.nodesTainted, 2);
        assert.equal(d.podsEvicted, 20, "20 running pods to evict");
        assert.ok(d.finishedBefore >= 0.3 * TASKS, `${d.finishedBefore} tasks done before`);
        assert.equal(report.tasksWithOneResult, TASKS, "every task exactly one stored result");
        assert.equal(report.duplicateWrites, 0, "no attempt stored twice");
        assert.equal(d.recomputed, 0, "no task that had finished ran again");
        assert.equal(d.failedAttempts, 0, "no disruption counted as a failure");
        assert.equal(d.tasksOtherwise, 0, "every task: one ok, the rest disrupted");
        assert.ok(d.disruptedAttempts >= 20, `${d.disruptedAttempts} attempts disrupted`);
        assert.ok(d.replacement.measured > 0, "replacement delays measured");
        assert.ok(
          report.jobs - 1 < d.disruptedAttempts,
          `${report.jobs} Jobs for ${d.disruptedAttempts} disruptions: retries share Jobs`,
        );
        // deno-lint-ignore no-console
        console.log(
          `disruptions at ${TASKS} tasks: ${d.disruptedAttempts} attempts disrupted ` +
            `(${d.nodesDeleted} nodes deleted, ${d.nodesTainted} tainted NoExecute, ` +
            `${d.podsEvicted} pods evicted after ${d.finishedBefore} results; ` +
            `${d.seenOnlyDeleted} seen only deleted); after the master saw the disruption, ` +
            `the next attempt was submitted a median ${d.resubmitted.medianS} s ` +
            `(max ${d.resubmitted.maxS} s) and started a median ${d.replacement.medianS} s ` +
            `(max ${d.replacement.maxS} s) later (${d.replacement.measured} measured); ` +
            `${report.jobs} Kubernetes Jobs in all; outcomes ${JSON.stringify(d.outcomes)}`,
        );
      },
    );
  } finally {
    await clusterScript("down", ["--dir", dir]);
  }
});
