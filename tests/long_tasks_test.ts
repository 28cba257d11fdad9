/**
 * Long tasks that survive: checkpoints and resumption after a kill, the stop
 * signal (SIGTERM, time limits, losing speculative copies) and its grace
 * period, checkpoints kept across an interrupted job and ignored when
 * damaged, and results as tasks finish. On every backend; the work a task
 * did is counted from its own markers (one per step), never from clocks.
 *
 * @module
 */

import assert from "node:assert/strict";
import { KubernetesBackend } from "../lib/backends/kubernetes/kubernetes.ts";
import { readStatus } from "../lib/catalog.ts";
import { JobLayout } from "../lib/format/layout.ts";
import type { JobStatus } from "../lib/format/status.ts";
import { openStorage } from "../lib/storage/storage.ts";
import {
  Client,
  type Entry,
  JobInterruptedError,
  type MapRun,
  TaskError,
  WorkerCrashError,
} from "../mod.ts";
import type { Plan } from "./fixtures/stepper.ts";
import { kill, stop } from "./support/disrupt.ts";
import { collect, example, failure, fixture, storedKeys, waitFor } from "./support/jobs.ts";
import { type Markers, withMarkersFor } from "./support/markers.ts";
import { type Target, targetTest } from "./support/targets.ts";

const calm = { speculationPercent: 0, retryDelayMs: 10 };
/** Long enough to start a container or a pod on a busy machine; the waits below are for markers. */
const SLOW = 180_000;

/** Σ i for i below n: what a stepper task returns. */
const sum = (n: number) => (n * (n - 1)) / 2;

/** What one start of a stepper task reported. */
interface Start {
  run: string;
  pid: number;
  attempt: string;
  from: number | null;
}

/** Every start of task `index`, in no particular order. */
async function starts(markers: Markers, index: number): Promise<Start[]> {
  const out: Start[] = [];
  for (const name of await markers.names(`start-${index}-`)) {
    const text = await markers.read(name);
    if (text) out.push({ run: name.slice(`start-${index}-`.length), ...JSON.parse(text) });
  }
  return out;
}

/** Steps task `index` did, over all its attempts. */
async function stepsDone(markers: Markers, index: number): Promise<number> {
  return (await markers.names(`step-${index}-`)).length;
}

/** Wait until task `index` has a marker, and return the start it belongs to. */
async function waitForStep(markers: Markers, index: number, step: number): Promise<Start> {
  return await waitFor(`task ${index} to pass step ${step}`, async () => {
    for (const start of await starts(markers, index)) {
      if (await markers.read(`step-${index}-${step}-${start.run}`) !== undefined) return start;
    }
    return undefined;
  }, SLOW);
}

/** Collect a run's results, in the background: a failed test does not leave it unhandled. */
function running<O>(run: AsyncIterable<O>): Promise<O[]> {
  const results = collect(run);
  results.catch(() => {});
  return results;
}

async function statusOf(storage: string, job: string): Promise<JobStatus> {
  await using s = await openStorage(storage);
  return await readStatus(s, job);
}

async function checkpointKeys(storage: string, job: string): Promise<string[]> {
  return await storedKeys(storage, new JobLayout(job).checkpointsPrefix);
}

/** What the attempts of a task printed: stored logs, or a Kubernetes backend's pod logs. */
async function logsOf(target: Target, storage: string, job: string, task: number) {
  await using s = await openStorage(storage);
  const texts: string[] = [];
  if (target.backend === "kubernetes") {
    const backend = new KubernetesBackend((await target.client(storage)).kubernetes);
    for await (const log of backend.logs(s, job, task)) texts.push(log.text);
  } else {
    for await (const { key } of s.list(`jobs/${job}/logs/${task}/`)) {
      texts.push(await new Response(await s.get(key)).text());
    }
  }
  return texts.join("\n");
}

/** The stepper over `plans`, with the markers' options. */
function stepper(
  client: Client,
  markers: Markers,
  plans: Plan[],
  options: Record<string, unknown> = {},
): MapRun<Plan, number> {
  return client.map<Plan, number>(fixture("stepper.ts"), {
    ...calm,
    ...markers.options,
    inputs: plans,
    ...options,
  });
}

targetTest(
  "a task killed mid-run resumes from its last checkpoint, recomputing at most one interval",
  async (target, storage) => {
    await withMarkersFor(target, storage, async (markers) => {
      // 8.8 s left after the kill: a real kubelet takes seconds to stop a deleted pod.
      const plan = { steps: 100, every: 5, stepMs: 100 };
      const run = stepper(new Client(await target.client(storage)), markers, [plan], {
        maxRetries: 1,
      });
      const results = running(run);
      await waitFor("the checkpoint of step 10", () => markers.read("ckpt-0-10"), SLOW);
      const victim = await waitForStep(markers, 0, 12);
      await kill(target, { job: run.job, task: 0, ...victim });
      assert.deepEqual(await results, [sum(100)]);

      const all = await starts(markers, 0);
      assert.equal(all.length, 2, "the killed start and the one that resumed");
      const resumed = all.find((s) => s.run !== victim.run)!;
      assert.ok(resumed.from !== null && resumed.from >= 10, `resumed from ${resumed.from}`);
      const recomputed = (await stepsDone(markers, 0)) - plan.steps;
      assert.ok(
        recomputed >= 0 && recomputed <= plan.every,
        `${recomputed} steps recomputed, more than one interval of ${plan.every}`,
      );
      assert.deepEqual(await checkpointKeys(storage, run.job), [], "no checkpoint left");
    });
  },
);

targetTest(
  "on SIGTERM a task sees its signal, checkpoints and stops in time; the retry resumes there and the stop is no failure",
  async (target, storage) => {
    await withMarkersFor(target, storage, async (markers) => {
      // No periodic checkpoint: only the one made when the signal fires. 9 s left after the
      // stop: a pod's SIGTERM can take seconds to come on a busy node.
      const plan = { steps: 100, every: 1000, stepMs: 100 };
      const run = stepper(new Client(await target.client(storage)), markers, [plan], {
        maxRetries: 0, // a disruption does not count against it
        graceMs: 60_000,
      });
      const results = running(run);
      const victim = await waitForStep(markers, 0, 8);
      await stop(target, { job: run.job, task: 0, ...victim });
      assert.deepEqual(await results, [sum(100)]);

      const stoppedAt = Number(await markers.read(`signal-0-${victim.run}`));
      assert.ok(stoppedAt >= 8, `the signal marker says ${stoppedAt}`);
      const resumed = (await starts(markers, 0)).find((s) => s.run !== victim.run)!;
      assert.equal(resumed.from, stoppedAt, "the retry starts where the signal found the task");
      assert.equal(await stepsDone(markers, 0), plan.steps, "no step was done twice");
      if (target.backend !== "kubernetes") {
        // Kubernetes restarts the pod of the same attempt itself.
        const attempts = (await statusOf(storage, run.job)).tasks[0]!.attempts;
        assert.deepEqual(attempts.map((a) => a.outcome), ["disrupted", "ok"]);
        assert.match(attempts[0]!.detail!, /stopped by SIGTERM from outside kubeface/);
      }
    });
  },
);

targetTest(
  "a task that finishes within its grace period after SIGTERM keeps its result",
  async (target, storage) => {
    await withMarkersFor(target, storage, async (markers) => {
      // 9 s left after the stop: a pod's SIGTERM can take seconds to come on a busy node.
      const plan: Plan = { steps: 100, every: 1000, stepMs: 100, onSignal: "ignore" };
      const run = stepper(new Client(await target.client(storage)), markers, [plan], {
        maxRetries: 0,
        graceMs: 60_000,
      });
      const results = running(run);
      const victim = await waitForStep(markers, 0, 8);
      await stop(target, { job: run.job, task: 0, ...victim });
      assert.deepEqual(await results, [sum(100)]);
      assert.equal((await markers.names("signal-0-")).length, 1, "it saw the signal");
      assert.equal((await starts(markers, 0)).length, 1, "and finished in that attempt");
      assert.equal(await stepsDone(markers, 0), plan.steps);
      const attempts = (await statusOf(storage, run.job)).tasks[0]!.attempts;
      assert.deepEqual(attempts.map((a) => a.outcome), ["ok"]);
    });
  },
);

targetTest(
  "a time limit fires the task's signal first, then kills the attempt when the grace period is over",
  async (target, storage) => {
    await withMarkersFor(target, storage, async (markers) => {
      const plan: Plan = { steps: 100_000, every: 100_000, stepMs: 50, onSignal: "ignore" };
      const run = stepper(new Client(await target.client(storage)), markers, [plan], {
        timeoutMs: 3000,
        graceMs: 1000,
        maxRetries: 0,
      });
      const error = await failure(run);
      assert.ok(error instanceof WorkerCrashError, `expected a WorkerCrashError, got ${error}`);
      assert.equal(error.kind, "timeout");
      const [start] = await starts(markers, 0);
      const signalled = await markers.names(`signal-0-${start!.run}`);
      assert.equal(signalled.length, 1, "the signal fired");
      const at = Number(await markers.read(signalled[0]!));
      const after = (await markers.names(`step-0-`)).map((n) => Number(n.split("-")[2]))
        .filter((step) => step > at);
      assert.ok(after.length > 0, "it kept running, ignoring the signal, until it was killed");
      assert.deepEqual(await markers.names("done-"), [], "it never finished");
    });
  },
);

targetTest(
  "a speculative copy that loses sees its signal, and its last checkpoint is not left behind",
  async (target, storage) => {
    await withMarkersFor(target, storage, async (markers) => {
      const run = new Client(await target.client(storage)).map<number, number>(
        fixture("loser_sees_signal.ts"),
        {
          ...markers.options,
          parallelism: 4,
          speculationPercent: 25,
          speculationRuntimePercentile: 50,
          speculationMaxReruns: 1,
        },
      );
      assert.deepEqual(await collect(run), [0, 10, 20, 30]);
      const loser = await markers.read("seen");
      const reason = await waitFor(
        "the loser's signal",
        () => markers.read(`signal-${loser}`),
        SLOW,
      );
      assert.match(reason, /AbortError/);
      if (target.backend !== "kubernetes" || target.warm) {
        const task1 = (await statusOf(storage, run.job)).tasks[1]!;
        assert.deepEqual(task1.attempts.map((a) => a.outcome), ["cancelled", "ok"]);
        assert.equal(task1.attempts[0]!.id, loser);
      }
      assert.deepEqual(await checkpointKeys(storage, run.job), []);
    });
  },
  { warm: true },
);

/**
 * Steps of a plan that must still be running seconds after step 10: pods
 * start apart and are stopped late on a busy node.
 */
const LONG = 100;

/**
 * Start a stepper job, wait for every task's checkpoint of step 10, and
 * interrupt it: the tasks checkpoint as they are stopped. Returns the job key.
 */
async function interrupted(
  target: Target,
  storage: string,
  markers: Markers,
  plans: Plan[],
): Promise<string> {
  const client = new Client(await target.client(storage));
  const run = stepper(client, markers, plans, { job: `cp-${crypto.randomUUID().slice(0, 8)}` });
  const results = running(run);
  for (let i = 0; i < plans.length; i++) {
    await waitFor(`task ${i}'s checkpoint of step 10`, () => markers.read(`ckpt-${i}-10`), SLOW);
  }
  await run.cancel();
  await assert.rejects(results, JobInterruptedError);
  // Pods may still be saving their state after the master let go of them.
  for (let i = 0; i < plans.length; i++) {
    await waitFor(`task ${i}'s signal`, async () => (await markers.names(`signal-${i}-`))[0], SLOW);
  }
  return run.job;
}

targetTest(
  "an interrupted job keeps its checkpoints and shows them; a rerun resumes every unfinished task from its own",
  async (target, storage) => {
    await withMarkersFor(target, storage, async (markers) => {
      const plans = [0, 1].map(() => ({ steps: LONG, every: 5, stepMs: 100 }));
      const job = await interrupted(target, storage, markers, plans);
      const layout = new JobLayout(job);
      assert.deepEqual(await checkpointKeys(storage, job), [
        layout.checkpoint(0),
        layout.checkpoint(1),
      ]);
      const status = await statusOf(storage, job);
      assert.equal(status.phase, "interrupted");
      for (const task of status.tasks) {
        assert.ok(task.checkpointAt, `task ${task.task} shows no checkpoint`);
        assert.ok(Date.parse(task.checkpointAt) >= Date.parse(status.startedAt));
      }

      const rerun = stepper(new Client(await target.client(storage)), markers, plans, { job });
      assert.deepEqual(await collect(rerun), [sum(LONG), sum(LONG)]);
      for (const index of [0, 1]) {
        const stoppedAt = Number(await markers.read((await markers.names(`signal-${index}-`))[0]!));
        const later = (await starts(markers, index)).filter((s) => s.from !== null);
        assert.deepEqual(later.map((s) => s.from), [stoppedAt], `task ${index} resumed`);
        assert.equal(await stepsDone(markers, index), LONG, `task ${index} did no step twice`);
      }
      assert.deepEqual(await checkpointKeys(storage, job), []);
      assert.equal((await statusOf(storage, job)).tasks[0]!.checkpointAt, undefined);
    });
  },
);

for (
  const [damage, corrupt] of [
    ["truncated", (bytes: Uint8Array) => bytes.slice(0, bytes.length - 7)],
    ["with a flipped byte", (bytes: Uint8Array) => {
      const out = bytes.slice();
      out[out.length - 3] = out[out.length - 3]! ^ 0x10;
      return out;
    }],
  ] as const
) {
  targetTest(
    `a checkpoint ${damage} is ignored with a warning, and the task starts from zero`,
    async (target, storage) => {
      await withMarkersFor(target, storage, async (markers) => {
        const plans = [{ steps: LONG, every: 5, stepMs: 100 }];
        const job = await interrupted(target, storage, markers, plans);
        {
          await using s = await openStorage(storage);
          const key = new JobLayout(job).checkpoint(0);
          const bytes = await new Response(await s.get(key)).bytes();
          await s.put(key, corrupt(bytes));
        }
        const before = await stepsDone(markers, 0);
        const rerun = stepper(new Client(await target.client(storage)), markers, plans, { job });
        assert.deepEqual(await collect(rerun), [sum(LONG)]);
        const all = await starts(markers, 0);
        assert.deepEqual(all.map((s) => s.from).sort(), [null, null], "both started from zero");
        assert.equal((await stepsDone(markers, 0)) - before, LONG, "every step done again");
        assert.match(
          await logsOf(target, storage, job, 0),
          /warning: ignoring the checkpoint of input 0 \(.*checkpoints\/0\): .*; the task starts from the beginning/,
        );
        assert.deepEqual(await checkpointKeys(storage, job), []);
      });
    },
  );
}

targetTest(
  "a checkpoint holding something that cannot be cloned fails the task with an error naming it",
  async (target, storage) => {
    await withMarkersFor(target, storage, async (markers) => {
      const plan = { steps: 10, every: 2, stepMs: 1, bad: true };
      const error = await failure(
        stepper(new Client(await target.client(storage)), markers, [plan]),
      );
      assert.ok(error instanceof TaskError, `expected a TaskError, got ${error}`);
      assert.equal(error.remoteName, "TypeError");
      assert.match(
        error.remoteMessage,
        /^Cannot checkpoint input 0: state\.model\.activate is a function, which structured clone cannot copy; checkpoint plain data/,
      );
    });
  },
);

targetTest(
  "map() with ordered: false yields each result as its task finishes",
  async (target, storage) => {
    await withMarkersFor(target, storage, async (markers) => {
      const run = new Client(await target.client(storage)).map<number, number>(
        fixture("released.ts"),
        { ...calm, ...markers.options, parallelism: 4, ordered: false },
      );
      const entries = run[Symbol.asyncIterator]();
      const next = entries.next();
      for (const x of [0, 1, 2, 3]) {
        await waitFor(`task ${x} to start`, () => markers.read(`started-${x}`), SLOW);
      }
      // Released one at a time, each only once the one before was yielded.
      const order = [2, 0, 3, 1];
      let pending: Promise<IteratorResult<Entry<number, number>>> = next;
      for (const x of order) {
        await markers.mark(`go-${x}`);
        const { value } = await pending;
        assert.deepEqual(value, { index: x, input: x, value: x * 10 });
        pending = entries.next();
      }
      assert.equal((await pending).done, true);
    });
  },
);

targetTest(
  "map() with ordered: false fails as in input order: at once, or after the others with failFast: false",
  async (target, storage) => {
    const client = new Client(await target.client(storage));
    const fast = client.map<number, number>(fixture("throws.ts"), { ...calm, ordered: false });
    const yielded: number[] = [];
    const error = await (async () => {
      for await (const entry of fast) yielded.push(entry.index);
    })().catch((e) => e);
    assert.ok(error instanceof TaskError, String(error));
    assert.equal(error.task, 3);
    assert.ok(!yielded.includes(3));

    const patient = client.map<number, number>(fixture("throws.ts"), {
      ...calm,
      ordered: false,
      failFast: false,
    });
    const seen: Entry<number, number>[] = [];
    const late = await (async () => {
      for await (const entry of patient) seen.push(entry);
    })().catch((e) => e);
    assert.ok(late instanceof TaskError, String(late));
    assert.equal(late.task, 3);
    assert.deepEqual(
      seen.map((e) => [e.index, e.input, e.value]).sort((a, b) => a[0]! - b[0]!),
      [0, 1, 2, 4, 5].map((x) => [x, x, x]),
      "every other task's result came first",
    );
  },
);

Deno.test("examples/pi.ts gives the same estimate whether or not it was stopped and resumed", async () => {
  const storage = await Deno.makeTempDir({ prefix: "kubeface-pi-" });
  try {
    const client = new Client({ storage });
    const inputs = [{ seed: 7, batches: 1500 }];
    const [straight] = await collect(
      client.map<typeof inputs[0], number>(example("pi.ts"), { ...calm, inputs }),
    );
    assert.ok(Math.abs(straight! - Math.PI) < 0.01, `${straight} is not near π`);

    const job = "pi-stopped";
    const run = client.map(example("pi.ts"), { ...calm, inputs, job });
    const results = running(run);
    const checkpoint = new JobLayout(job).checkpoint(0);
    await waitFor(
      "a checkpoint",
      async () => (await storedKeys(storage, checkpoint)).length > 0 || undefined,
      SLOW,
    );
    await run.cancel();
    await assert.rejects(results, JobInterruptedError);
    assert.deepEqual(await storedKeys(storage, checkpoint), [checkpoint], "stopped half way");
    const status = await statusOf(storage, job);
    assert.equal(status.tasks[0]!.phase, "pending");
    assert.deepEqual(await collect(client.map(example("pi.ts"), { ...calm, inputs, job })), [
      straight,
    ]);
  } finally {
    await Deno.remove(storage, { recursive: true });
  }
});

targetTest(
  "in a task of several inputs, each input has its own index and checkpoint",
  async (target, storage) => {
    await withMarkersFor(target, storage, async (markers) => {
      const plan = { steps: 6, every: 2, stepMs: 10 };
      const run = stepper(new Client(await target.client(storage)), markers, [plan, plan, plan], {
        itemsPerTask: 2,
      });
      assert.deepEqual(await collect(run), [sum(6), sum(6), sum(6)]);
      for (const index of [0, 1, 2]) {
        const [start] = await starts(markers, index);
        assert.equal(start?.from, null, `input ${index} started once, from zero`);
        assert.notEqual(
          await markers.read(`ckpt-${index}-6`),
          undefined,
          `input ${index} checkpointed`,
        );
      }
      const attempts = new Set(
        (await starts(markers, 0)).concat(await starts(markers, 1)).map((s) => s.attempt),
      );
      assert.equal(attempts.size, 1, "inputs 0 and 1 ran in one attempt of task 0");
      assert.deepEqual(await checkpointKeys(storage, run.job), []);
    });
  },
  { backends: ["local", "warm"] },
);
