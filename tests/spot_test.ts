/**
 * Pods that can be stopped and resumed: `spot` schedules them on GKE spot
 * nodes, and the job's grace period becomes their
 * `terminationGracePeriodSeconds`. The Job made so passes the test
 * cluster's validation.
 *
 * @module
 */

import assert from "node:assert/strict";
import { BatchV1Api } from "@kubernetes/client-node";
import { jobSpec, type JobSpecInput } from "../lib/backends/kubernetes/job_spec.ts";
import { parseToleration } from "../lib/backends/kubernetes/options.ts";
import { SPOT_LABEL } from "../lib/backends/kubernetes/spot.ts";
import { JobLayout } from "../lib/format/layout.ts";
import { openStorage, type Storage } from "../lib/storage/storage.ts";
import { kubernetesTest } from "./support/targets.ts";

/** Run `fn` with a storage root in a temporary directory, removed after. */
async function withStorage(fn: (storage: Storage) => Promise<void> | void): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "kubeface-spot-" });
  try {
    await using storage = await openStorage(dir);
    await fn(storage);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function input(storage: Storage, extra: Partial<JobSpecInput> = {}): JobSpecInput {
  return {
    job: {
      key: "spot-1",
      storage,
      layout: new JobLayout("spot-1"),
      permissions: {},
      parallelism: 2,
      env: {},
      timeoutMs: undefined,
      tasks: 4,
      maxRetries: 2,
    },
    options: {},
    namespace: "default",
    name: "kf-spot-1",
    completions: 4,
    runtime: undefined,
    ...extra,
  };
}

Deno.test("spot pods select GKE spot nodes and tolerate their taint, next to the user's own", async () => {
  await withStorage((storage) => {
    const plain = jobSpec(input(storage)).spec!.template.spec!;
    assert.equal(plain.nodeSelector, undefined);
    assert.equal(plain.tolerations, undefined);
    const spec = jobSpec(input(storage, {
      options: {
        spot: true,
        nodeSelector: { "kubernetes.io/arch": "amd64" },
        tolerations: [parseToleration("dedicated=batch:NoSchedule")],
      },
    })).spec!.template.spec!;
    assert.deepEqual(spec.nodeSelector, { "kubernetes.io/arch": "amd64", [SPOT_LABEL]: "true" });
    assert.deepEqual(spec.tolerations, [
      { key: "dedicated", operator: "Equal", value: "batch", effect: "NoSchedule" },
      { key: SPOT_LABEL, operator: "Equal", value: "true", effect: "NoSchedule" },
    ]);
  });
});

Deno.test("pods get the grace period plus 5 s to stop, and their worker the grace period", async () => {
  await withStorage((storage) => {
    const byDefault = jobSpec(input(storage)).spec!.template.spec!;
    assert.equal(byDefault.terminationGracePeriodSeconds, 30, "25 s for the task, 5 s to exit");
    const short = jobSpec(input(storage, {
      job: { ...input(storage).job, graceMs: 8500 },
    })).spec!.template.spec!;
    assert.equal(short.terminationGracePeriodSeconds, 14);
    const env = short.containers[0]!.env!;
    assert.deepEqual(env.find((e) => e.name === "KUBEFACE_GRACE_MS"), {
      name: "KUBEFACE_GRACE_MS",
      value: "8500",
    });
  });
});

kubernetesTest("a spot Job with a grace period passes the API server's validation", async (ctx) => {
  await using storage = await openStorage(ctx.storage);
  const body = jobSpec(input(storage, {
    job: { ...input(storage).job, graceMs: 10_000 },
    options: { spot: true },
    namespace: ctx.namespace,
  }));
  const batch = ctx.cluster.userKubeConfig.makeApiClient(BatchV1Api);
  const created = await batch.createNamespacedJob({
    namespace: ctx.namespace,
    body,
    dryRun: "All",
  });
  const spec = created.spec!.template.spec!;
  assert.equal(spec.terminationGracePeriodSeconds, 15);
  assert.equal(spec.nodeSelector?.[SPOT_LABEL], "true");
  assert.ok(spec.tolerations?.some((t) => t.key === SPOT_LABEL && t.effect === "NoSchedule"));
});
