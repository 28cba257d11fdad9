/**
 * Jobs that survive: reuse, refusal of a changed job, master crashes and
 * interruptions, retries, speculation, timeouts and status pages.
 *
 * @module
 */

import assert from "node:assert/strict";
import { JobLayout } from "../lib/format/layout.ts";
import { readStatus } from "../lib/catalog.ts";
import type { JobStatus } from "../lib/format/status.ts";
import { openStorage } from "../lib/storage/storage.ts";
import { Client, JobMismatchError, WorkerCrashError } from "../mod.ts";
import { kubeface, spawnKubeface } from "./support/cli.ts";
import {
  collect,
  failure,
  fixture,
  resultHeaders,
  storedKeys,
  waitFor,
  withMarkers,
} from "./support/jobs.ts";
import { targetTest } from "./support/targets.ts";

const calm = { speculationPercent: 0, retryDelayMs: 10 };

async function status(storage: string, job: string): Promise<JobStatus> {
  await using s = await openStorage(storage);
  return await readStatus(s, job);
}

async function runsIn(dir: string): Promise<number[]> {
  const text = await Deno.readTextFile(`${dir}/runs`).catch(() => "");
  return text.split("\n").filter(Boolean).map(Number).sort((a, b) => a - b);
}

targetTest(
  "a rerun with the same key reuses every stored result and runs only the missing tasks",
  async (target, storage) => {
    await withMarkers(async (dir, perms) => {
      const client = new Client(await target.client(storage));
      const options = { ...calm, ...perms, job: "reuse-1" };
      assert.deepEqual(await collect(client.map(fixture("counted.ts"), options)), [
        0,
        1,
        4,
        9,
        16,
        25,
      ]);
      assert.deepEqual(await runsIn(dir), [0, 1, 2, 3, 4, 5]);

      assert.deepEqual(await collect(client.map(fixture("counted.ts"), options)), [
        0,
        1,
        4,
        9,
        16,
        25,
      ]);
      assert.deepEqual(await runsIn(dir), [0, 1, 2, 3, 4, 5], "nothing ran again");
      assert.equal((await status(storage, "reuse-1")).counts.reused, 6);

      // Lose two results: only those two run again.
      await using s = await openStorage(storage);
      const layout = new JobLayout("reuse-1");
      for (const task of [2, 4]) {
        for await (const { key } of s.list(layout.taskResults(task))) await s.delete(key);
      }
      assert.deepEqual(await collect(client.map(fixture("counted.ts"), options)), [
        0,
        1,
        4,
        9,
        16,
        25,
      ]);
      assert.deepEqual(await runsIn(dir), [0, 1, 2, 2, 3, 4, 4, 5]);
    });
  },
  { warm: true },
);

targetTest(
  "a rerun with a changed module or changed inputs is refused unless overwritten",
  async (target, storage) => {
    const client = new Client(await target.client(storage));
    await collect(client.map(fixture("echo.ts"), { ...calm, job: "same-key", inputs: [1, 2] }));

    const otherModule = await failure(
      client.map(fixture("describe.ts"), { ...calm, job: "same-key", inputs: [1, 2] }),
    );
    assert.ok(otherModule instanceof JobMismatchError);
    assert.match(
      otherModule.message,
      /^Cannot reuse job 'same-key': it was made from a different task module \(bundle sha256 \w{12}…, now \w{12}…\); use a new job key, or overwrite the stored job and its results with --overwrite$/,
    );
    const otherInputs = await failure(
      client.map(fixture("echo.ts"), { ...calm, job: "same-key", inputs: [1, 3] }),
    );
    assert.match((otherInputs as Error).message, /its 2 inputs differ from the ones given now/);
    const moreInputs = await failure(
      client.map(fixture("echo.ts"), { ...calm, job: "same-key", inputs: [1, 2, 3] }),
    );
    assert.match((moreInputs as Error).message, /it has 2 inputs, not 3/);

    const overwritten = await collect(
      client.map(fixture("describe.ts"), {
        ...calm,
        job: "same-key",
        inputs: [1, 2],
        overwrite: true,
      }),
    );
    assert.deepEqual(overwritten, ["[object Number]", "[object Number]"]);
  },
);

targetTest("a worker killed mid-task is retried and the job completes", async (target, storage) => {
  await withMarkers(async (dir, perms) => {
    const run = new Client(await target.client(storage)).map<number, number>(
      fixture("first_attempt_hangs.ts"),
      { ...calm, ...perms, maxRetries: 1 },
    );
    const results = collect(run);
    const pid = await waitFor(
      "the first attempt's pid",
      () => Deno.readTextFile(`${dir}/pid`).then(Number, () => undefined),
    );
    Deno.kill(pid, "SIGKILL");
    assert.deepEqual(await results, [0, 10, 20, 30]);
    const task1 = (await status(storage, run.job)).tasks[1]!;
    assert.deepEqual(task1.attempts.map((a) => a.outcome), ["crash", "ok"]);
    assert.match(task1.attempts[0]!.detail!, /killed by SIGKILL/);
  });
}, { backends: ["local"] });

targetTest("a task whose code threw is retried only when asked", async (target, storage) => {
  const run = new Client(await target.client(storage)).map(fixture("throws.ts"), {
    ...calm,
    retryTaskErrors: true,
    maxRetries: 2,
  });
  await failure(run);
  const task3 = (await resultHeaders(storage, run.job)).filter((h) => h.task === 3);
  assert.equal(task3.length, 3, "the first attempt and two retries");
  assert.ok(task3.every((h) => h.status === "error"));
}, { warm: true });

targetTest(
  "a straggler gets a speculative copy; the first result wins and the loser is stopped",
  async (target, storage) => {
    await withMarkers(async (_dir, perms) => {
      const run = new Client(await target.client(storage)).map<number, number>(
        fixture("first_attempt_hangs.ts"),
        {
          ...perms,
          parallelism: 4,
          // Only once the other three are done (1 of 4 running): a slow start of
          // another task (a container on a busy machine) is no straggler then.
          speculationPercent: 25,
          speculationRuntimePercentile: 50,
          speculationMaxReruns: 1,
        },
      );
      assert.deepEqual(await collect(run), [0, 10, 20, 30]);
      // The job did not wait for the hung attempt (a minute): it was cancelled, the copy won.
      // (From the records, not the clock: pods on a busy 2-core node start slowly.)
      const task1 = (await status(storage, run.job)).tasks[1]!;
      assert.equal(task1.attempts.length, 2);
      assert.deepEqual(task1.attempts.map((a) => a.speculative), [false, true]);
      assert.deepEqual(task1.attempts.map((a) => a.outcome), ["cancelled", "ok"]);
      assert.equal(task1.winner, task1.attempts[1]!.id);
      const counts = (await status(storage, run.job)).counts;
      assert.equal(counts.speculative, 1);
      assert.equal((await resultHeaders(storage, run.job)).length, 4, "one result per input");
    });
  },
  { warm: true },
);

targetTest(
  "an attempt running past the time limit is stopped and counted as a failed attempt",
  async (target, storage) => {
    const run = new Client(await target.client(storage)).map(fixture("forever.ts"), {
      ...calm,
      timeoutMs: 500,
      maxRetries: 1,
    });
    const error = await failure(run);
    assert.ok(error instanceof WorkerCrashError, `expected a WorkerCrashError, got ${error}`);
    assert.equal(error.kind, "timeout");
    assert.equal(error.attempts, 2);
    assert.match(
      error.message,
      /Task 0 \(input 0\) timed out 2 time\(s\) without a result: it ran longer than the time limit of 500 ms/,
    );
    const task0 = (await status(storage, run.job)).tasks[0]!;
    // Kubernetes restarts the pod of the same attempt itself (backoffLimitPerIndex); warm
    // pods do not: the master stops the attempt and offers a new one.
    const attempts = target.backend === "kubernetes" && !target.warm
      ? ["timeout"]
      : ["timeout", "timeout"];
    assert.deepEqual(
      task0.attempts.map((a) => a.outcome),
      attempts,
      JSON.stringify(task0.attempts.map((a) => a.detail)),
    );
  },
  { warm: true },
);

targetTest(
  "the status page says what happened to every task and attempt",
  async (target, storage) => {
    const run = new Client(await target.client(storage)).map(fixture("half.ts"), {
      ...calm,
      parallelism: 3,
      job: "status-1",
    });
    const before = Date.now();
    await collect(run);
    const s = await status(storage, "status-1");
    assert.equal(s.job, "status-1");
    assert.equal(s.phase, "done");
    assert.equal(s.backend, target.backend === "warm" ? "local" : target.backend);
    assert.equal(s.parallelism, 3);
    assert.equal(s.inputs, 9);
    assert.match(s.module, /half\.ts$/);
    assert.deepEqual(
      {
        total: s.counts.total,
        done: s.counts.done,
        failed: s.counts.failed,
        pending: s.counts.pending,
        running: s.counts.running,
      },
      { total: 9, done: 9, failed: 0, pending: 0, running: 0 },
    );
    assert.ok(
      Date.parse(s.startedAt) >= before - 60_000 &&
        Date.parse(s.updatedAt) >= Date.parse(s.startedAt),
    );
    for (const task of s.tasks) {
      assert.equal(task.phase, "done");
      assert.equal(task.attempts.length, 1);
      const a = task.attempts[0]!;
      assert.equal(a.outcome, "ok");
      assert.ok(Date.parse(a.submittedAt) <= Date.parse(a.startedAt!));
      assert.ok(Date.parse(a.startedAt!) <= Date.parse(a.endedAt!));
    }
    const keys = await storedKeys(storage);
    assert.ok(keys.includes("jobs/status-1/status.html"));
    assert.ok(keys.includes("index/status-1.json"));
  },
  { warm: true },
);

targetTest(
  "a shared value is stored once and loaded by the tasks that use it",
  async (target, storage) => {
    const client = new Client(await target.client(storage));
    const table = new Float64Array(100_000).map((_, i) => i * 1.5);
    const ref = await client.share(table);
    assert.equal(
      await (await client.share(table)).sha256,
      ref.sha256,
      "sharing again stores nothing new",
    );
    const results = await collect(client.map<{ index: number }, number>(fixture("uses_shared.ts"), {
      ...calm,
      inputs: [0, 7, 99_999].map((index) => ({ index, table: ref })),
    }));
    assert.deepEqual(results, [0, 10.5, 149_998.5]);
    assert.equal((await storedKeys(storage, "shared/")).length, 1);
    assert.deepEqual(await ref.get(), table, "the master can load it too");
  },
);

Deno.test("killing the master (SIGKILL) mid-job and rerunning completes it without recomputing a finished task", async () => {
  const storage = await Deno.makeTempDir({ prefix: "kubeface-kill-" });
  try {
    const args = [
      "map",
      "-m",
      fixture("slow_squares.ts"),
      "--storage",
      storage,
      "--job",
      "killed-1",
      "-q",
      "--parallelism",
      "3",
      "--speculation-percent",
      "0",
    ];
    const master = spawnKubeface(args);
    await waitFor("two results", async () => {
      const ok = (await storedKeys(storage, "jobs/killed-1/results/")).filter((k) =>
        k.endsWith(".ok")
      );
      return ok.length >= 2 ? true : undefined;
    }, 90_000);
    master.kill("SIGKILL");
    await master.output();
    const finishedBefore = new Set(
      (await storedKeys(storage, "jobs/killed-1/results/")).filter((k) => k.endsWith(".ok"))
        .map((k) => Number(k.split("/")[3])),
    );

    const rerun = await kubeface(args.filter((a) => a !== "-q"));
    assert.equal(rerun.code, 0, rerun.stderr);
    const lines = rerun.stdout.trimEnd().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(lines, Array.from({ length: 12 }, (_, i) => ({ input: i, result: i * i })));
    const s = await status(storage, "killed-1");
    for (const task of finishedBefore) {
      assert.ok(s.tasks[task]!.reused, `task ${task} had a result and was not reused`);
      assert.equal(s.tasks[task]!.attempts.length, 0, `task ${task} had a result and ran again`);
    }
    assert.match(rerun.stderr, new RegExp(`\\d+ reused`));
  } finally {
    await Deno.remove(storage, { recursive: true });
  }
});

Deno.test("Ctrl-C stops the workers, marks the job interrupted and prints how to resume", async () => {
  const storage = await Deno.makeTempDir({ prefix: "kubeface-sigint-" });
  try {
    const master = spawnKubeface([
      "map",
      "-m",
      fixture("slow_squares.ts"),
      "--storage",
      storage,
      "--job",
      "int-1",
      "--parallelism",
      "2",
    ]);
    await waitFor(
      "the first result",
      async () => (await storedKeys(storage, "jobs/int-1/results/")).length > 0 ? true : undefined,
    );
    master.kill("SIGINT");
    const out = await master.output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 130, stderr);
    assert.match(
      stderr,
      /kubeface: job int-1 interrupted; resume it with:\n {2}kubeface map -m .*slow_squares\.ts --storage .* --parallelism 2 --job int-1\n/,
    );
    const s = await status(storage, "int-1");
    assert.equal(s.phase, "interrupted");
    assert.equal(s.counts.running, 0);
    const resultsAfter = (await storedKeys(storage, "jobs/int-1/results/")).length;
    await new Promise((resolve) => setTimeout(resolve, 1500)); // a surviving worker would write within 1 s
    assert.equal(
      (await storedKeys(storage, "jobs/int-1/results/")).length,
      resultsAfter,
      "no worker kept running",
    );
  } finally {
    await Deno.remove(storage, { recursive: true });
  }
});
