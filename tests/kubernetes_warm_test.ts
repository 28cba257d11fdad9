/**
 * Warm pods on Kubernetes (`kubernetes: { warm: true }`, `--warm`) against
 * the real test control plane and node, with GCS (the emulator) as the only
 * channel between the master and the pods. Outcomes are decided from
 * markers the tasks leave and from what is stored, never from clocks.
 *
 * @module
 */

import assert from "node:assert/strict";
import { CoreV1Api } from "@kubernetes/client-node";
import { POOL_ANNOTATION } from "../lib/backends/kubernetes/warm_session.ts";
import { readStatus } from "../lib/catalog.ts";
import { readJson } from "../lib/format/json.ts";
import { JobLayout } from "../lib/format/layout.ts";
import type { JobStatus } from "../lib/format/status.ts";
import { type WarmClaim, WarmLayout } from "../lib/format/warm.ts";
import { Client, openStorage, WorkerCrashError } from "../mod.ts";
import { pollUntil } from "./infra/cluster/cluster.ts";
import { kubeface, spawnKubeface } from "./support/cli.ts";
import { collect, failure, fixture, resultHeaders, waitFor, withMarkers } from "./support/jobs.ts";
import {
  clusterFlags,
  jobsOf,
  kubernetesTest,
  type KubernetesTestContext,
  podsOf,
  TEST_WARM_TIMINGS,
} from "./support/targets.ts";

const calm = { speculationPercent: 0, retryDelayMs: 10 };
const SLOW = 180_000;
/** Warm pods run the stock image only: the worker image adds nothing to what is tested here. */
const stock = { bootstraps: ["stock" as const] };

function warmClient(ctx: KubernetesTestContext) {
  return new Client({
    ...ctx.client,
    kubernetes: { ...ctx.client.kubernetes, warm: true, warmTimings: TEST_WARM_TIMINGS },
  });
}

async function statusOf(storage: string, job: string): Promise<JobStatus> {
  await using store = await openStorage(storage);
  return await readStatus(store, job);
}

/** Keys under one warm folder of a job. */
async function warmKeys(storage: string, job: string, kind: "offers" | "claims") {
  await using store = await openStorage(storage);
  const keys: string[] = [];
  for await (const { key } of store.list(new WarmLayout(new JobLayout(job)).folder(kind))) {
    keys.push(key);
  }
  return keys;
}

kubernetesTest(
  "warm pods: one pool Job of `parallelism` pods runs every task, one attempt each",
  async (ctx) => {
    await withMarkers(async (dir, perms) => {
      const run = warmClient(ctx).map<number, number>(fixture("exclusive.ts"), {
        ...calm,
        ...perms,
        parallelism: 4,
      });
      assert.deepEqual(await collect(run), Array.from({ length: 40 }, (_, i) => i + 1));
      const names = [...Deno.readDirSync(dir)].map((e) => e.name);
      assert.deepEqual(
        names.filter((n) => n.startsWith("overlap-")),
        [],
        "no task ran twice at once",
      );
      const runs = names.filter((n) => n.startsWith("ran-")).map((n) => Number(n.split("-")[1]));
      assert.deepEqual(runs.sort((a, b) => a - b), Array.from({ length: 40 }, (_, i) => i));
      const jobs = await jobsOf(ctx, run.job);
      assert.equal(jobs.length, 1, "one pool Job");
      assert.equal(jobs[0]!.metadata?.annotations?.[POOL_ANNOTATION], "true");
      assert.equal(jobs[0]!.spec?.completions, 4);
      // Four pods ran the forty tasks (the pod is known of attempts whose claim the master saw).
      const hosts = new Set(
        (await statusOf(ctx.storage, run.job)).tasks.flatMap((t) => t.attempts[0]!.host || []),
      );
      assert.ok(hosts.size <= 4 && hosts.size >= 1, `attempts ran on ${[...hosts].join(", ")}`);
      assert.ok([...hosts].every((h) => h.startsWith(jobs[0]!.metadata!.name!)));
      // Closed: every pod exits on its own, and nothing is left on offer.
      await pollUntil("the pool's pods to exit", async () => {
        const pods = await podsOf(ctx, run.job);
        return pods.every((p) => p.status?.phase === "Succeeded") ? true : undefined;
      }, { timeoutMs: 60_000 });
      assert.deepEqual(await warmKeys(ctx.storage, run.job, "claims"), []);
      assert.deepEqual(
        (await warmKeys(ctx.storage, run.job, "offers")).map((k) => k.split("/").at(-1)),
        ["closed"],
      );
    });
  },
  stock,
);

kubernetesTest(
  "warm pods: a pod killed mid-attempt loses only that attempt; the other pods go on",
  async (ctx) => {
    await withMarkers(async (dir, perms) => {
      const run = warmClient(ctx).map<number, number>(fixture("warm_kill.ts"), {
        ...calm,
        ...perms,
        parallelism: 3,
        maxRetries: 0,
      });
      const results = collect(run);
      const victim = await waitFor(
        "task 1's first attempt",
        () => Deno.readTextFile(`${dir}/victim`).catch(() => undefined),
        SLOW,
      );
      // The two other pods run tasks that wait for `go`.
      await waitFor("two other tasks to run", () => {
        const ran = [...Deno.readDirSync(dir)].filter((e) => e.name.startsWith("ran-"));
        return ran.length >= 2 ? true : undefined;
      }, SLOW);
      const claim = await (async () => {
        await using store = await openStorage(ctx.storage);
        const warm = new WarmLayout(new JobLayout(run.job));
        return await readJson<WarmClaim>(
          store,
          warm.key("claims", { task: 1, attempt: victim }),
        );
      })();
      const core = ctx.cluster.kubeConfig.makeApiClient(CoreV1Api);
      await core.deleteNamespacedPod({
        name: claim.pod,
        namespace: ctx.namespace,
        gracePeriodSeconds: 0,
      });
      await waitFor("the lost attempt to be retried", async () => {
        const task1 = (await statusOf(ctx.storage, run.job).catch(() => undefined))?.tasks[1];
        return (task1?.attempts.length ?? 0) >= 2 ? true : undefined;
      }, SLOW);
      await Deno.writeTextFile(`${dir}/go`, "");
      assert.deepEqual(await results, [0, 10, 20]);
      const status = await statusOf(ctx.storage, run.job);
      assert.deepEqual(
        status.tasks[1]!.attempts.map((a) => a.outcome),
        ["disrupted", "ok"],
        "the killed pod's attempt was retried, not counted (maxRetries is 0)",
      );
      assert.equal(status.tasks[1]!.attempts[0]!.id, victim);
      for (const task of [0, 2]) {
        assert.deepEqual(
          status.tasks[task]!.attempts.map((a) => a.outcome),
          ["ok"],
          `task ${task} ran once`,
        );
      }
      const ran = [...Deno.readDirSync(dir)].filter((e) => e.name.startsWith("ran-"));
      assert.equal(ran.length, 2, "no other task ran twice");
    });
  },
  stock,
);

kubernetesTest(
  "warm pods: a master killed mid-run leaves the pods to drain its offers; the rerun reattaches",
  async (ctx) => {
    const key = `warm-attach-${crypto.randomUUID().slice(0, 6)}`;
    const args = [
      "map",
      "-m",
      fixture("slow_squares.ts"),
      ...clusterFlags(ctx),
      "--warm",
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
      "a claimed attempt",
      async () => (await warmKeys(ctx.storage, key, "claims")).length > 0 ? true : undefined,
      { timeoutMs: SLOW },
    );
    master.kill("SIGKILL");
    await master.output();
    // Listed one after the other, an attempt can be seen twice (offered, then claimed): count ids.
    const handedOut = new Set(
      [...await warmKeys(ctx.storage, key, "offers"), ...await warmKeys(ctx.storage, key, "claims")]
        .map((k) => k.split("/").at(-1)).filter((id) => id !== "closed"),
    ).size;
    assert.ok(handedOut > 0, "the master handed out attempts before it died");
    // Without a master, the pods take what was offered and run it to the end.
    await pollUntil("the pods to drain the offers", async () => {
      const left = (await warmKeys(ctx.storage, key, "offers")).length +
        (await warmKeys(ctx.storage, key, "claims")).length;
      return left === 0 ? true : undefined;
    }, { timeoutMs: SLOW });
    const drained = (await resultHeaders(ctx.storage, key)).length;
    assert.ok(drained >= handedOut, `${drained} results after ${handedOut} handed out`);
    const rerun = await kubeface(args);
    assert.equal(rerun.code, 0, rerun.stderr);
    const lines = rerun.stdout.trimEnd().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(lines, Array.from({ length: 12 }, (_, i) => ({ input: i, result: i * i })));
    // Nothing ran twice: what the pods drained was reused.
    const perTask = new Map<number, number>();
    for (const h of await resultHeaders(ctx.storage, key)) {
      perTask.set(h.task, (perTask.get(h.task) ?? 0) + 1);
    }
    assert.deepEqual([...perTask.values()], Array(12).fill(1));
    const status = await statusOf(ctx.storage, key);
    assert.ok(status.tasks.filter((t) => t.reused).length >= drained);
  },
  stock,
);

kubernetesTest(
  "warm pods: offers no pod can take fail with the scheduler's reason instead of waiting",
  async (ctx) => {
    const client = new Client({
      ...ctx.client,
      kubernetes: {
        ...ctx.client.kubernetes,
        warm: true,
        warmTimings: TEST_WARM_TIMINGS,
        memory: "100Ti",
        unstartableTimeoutMs: 3000,
      },
    });
    const error = await failure(client.map(fixture("half.ts"), { ...calm, parallelism: 2 }));
    assert.ok(error instanceof WorkerCrashError, `expected a WorkerCrashError, got ${error}`);
    assert.equal(error.kind, "infrastructure");
    assert.match(
      error.message,
      /no warm pod took it for \d+ s: pod \S+ unschedulable: .*Insufficient memory/,
    );
  },
  stock,
);
