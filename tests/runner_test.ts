/**
 * The job loop against a scripted backend session and a manual clock:
 * retries and backoff, timeouts, speculation and failures, decided in
 * milliseconds. Results are real records in a real local storage, written
 * with the worker's own record code.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { AttemptSpec, BackendEvent, BackendSession } from "../lib/backends/backend.ts";
import { TaskError, WorkerCrashError } from "../lib/errors.ts";
import { JobLayout } from "../lib/format/layout.ts";
import type { Manifest, ResultHeader } from "../lib/format/manifest.ts";
import { encodeRecord, encodeValue, recordBody } from "../lib/format/records.ts";
import { JobRunner } from "../lib/master/runner.ts";
import { resolveJobOptions } from "../lib/options.ts";
import type { JobOptions } from "../mod.ts";
import { openStorage, type Storage } from "../lib/storage/storage.ts";
import { ManualClock, settle } from "./support/clock.ts";

/** A backend session that records what the runner asks and reports what the test says. */
class ScriptedSession implements BackendSession {
  readonly submitted: AttemptSpec[] = [];
  /** The tasks of each submission, in order. */
  readonly submissions: number[][] = [];
  readonly cancelled: string[] = [];
  enforcesTimeouts = false;
  /** While set, a cancelled attempt only ends when this promise resolves (its grace period). */
  grace: Promise<void> | undefined;
  /** While set, a submission only ends when this promise resolves (a Job being created). */
  creating: Promise<void> | undefined;
  constructor(readonly emit: (event: BackendEvent) => void) {}

  async submit(attempts: readonly AttemptSpec[]): Promise<void> {
    this.submitted.push(...attempts);
    this.submissions.push(attempts.map((a) => a.task));
    await this.creating;
  }

  async cancel(attempts: readonly string[]): Promise<void> {
    this.cancelled.push(...attempts);
    await this.grace;
    for (const id of attempts) {
      const spec = this.submitted.find((s) => s.attempt === id)!;
      this.emit({ ...this.#end(spec), reason: "cancelled", exitCode: undefined });
    }
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #end(spec: AttemptSpec) {
    return {
      type: "exited" as const,
      task: spec.task,
      attempt: spec.attempt,
      at: new Date(),
      detail: "scripted",
    };
  }

  /** The attempts of a task, in submission order. */
  of(task: number): AttemptSpec[] {
    return this.submitted.filter((s) => s.task === task);
  }
}

interface Fixture extends AsyncDisposable {
  runner: JobRunner;
  session: ScriptedSession;
  clock: ManualClock;
  storage: Storage;
  layout: JobLayout;
  /** Report that an attempt started. */
  start(spec: AttemptSpec): void;
  /** Store a value for an attempt, as a worker does, and report its exit 0. */
  succeed(spec: AttemptSpec, value: unknown): Promise<void>;
  /** Store the task's error for an attempt and report exit 3. */
  throwIn(spec: AttemptSpec, message: string): Promise<void>;
  /** Report that an attempt's worker died without a result. */
  crash(spec: AttemptSpec): void;
  /** Report that an attempt was stopped from outside (SIGTERM: a preemption, a drain). */
  disrupt(spec: AttemptSpec): void;
}

/**
 * A runner of `tasks` scripted tasks. `writeStatus` stands for the status write (by default one
 * that takes no time); it gets the fixture's clock.
 */
async function fixture(
  tasks: number,
  options: JobOptions = {},
  writeStatus: (clock: ManualClock) => Promise<void> = () => Promise.resolve(),
): Promise<Fixture> {
  const dir = await Deno.makeTempDir({ prefix: "kubeface-runner-" });
  const storage = await openStorage(dir);
  const layout = new JobLayout("scripted");
  const clock = new ManualClock();
  const manifest: Manifest = {
    format: 1,
    key: layout.key,
    createdAt: new Date(clock.now()).toISOString(),
    module: "file:///scripted.ts",
    bundle: { sha256: "0".repeat(64), size: 0 },
    inputs: { count: tasks, digest: "0".repeat(64) },
    tasks,
    itemsPerTask: 1,
  };
  const runner = new JobRunner({
    storage,
    layout,
    manifest,
    options: resolveJobOptions(
      { speculationPercent: 0, retryDelayMs: 1000, ...options, job: layout.key },
      new URL(manifest.module),
    ),
    writeStatus: () => writeStatus(clock),
    clock,
    random: () => 1,
  });
  const session = new ScriptedSession(runner.onEvent);
  await runner.start(session);
  const at = () => new Date(clock.now());
  const store = async (spec: AttemptSpec, status: "ok" | "error", value: unknown) => {
    const header: Omit<ResultHeader, "encoding" | "size"> = {
      kind: "result",
      status,
      job: layout.key,
      task: spec.task,
      attempt: spec.attempt,
      host: "scripted",
      startedAt: at().toISOString(),
      endedAt: at().toISOString(),
      durationMs: 0,
      rssBytes: 0,
      deno: Deno.version.deno,
      ...(status === "error"
        ? { error: { name: "RangeError", message: String(value), stack: "RangeError: here" } }
        : {}),
    };
    const body = encodeRecord(header, status === "ok" ? encodeValue(value, "value") : undefined);
    await storage.put(layout.result(spec.task, spec.attempt, status), recordBody(body));
  };
  const exited = (
    spec: AttemptSpec,
    exitCode: number,
    reason: "exited" | "killed" | "disrupted" = "exited",
  ) =>
    runner.onEvent({
      type: "exited",
      task: spec.task,
      attempt: spec.attempt,
      at: at(),
      reason,
      exitCode,
      detail: `exited with code ${exitCode}`,
    });
  return {
    runner,
    session,
    clock,
    storage,
    layout,
    start: (spec) =>
      runner.onEvent({ type: "started", task: spec.task, attempt: spec.attempt, at: at() }),
    succeed: async (spec, value) => {
      await store(spec, "ok", value);
      exited(spec, 0);
      await settle();
    },
    throwIn: async (spec, message) => {
      await store(spec, "error", message);
      exited(spec, 3);
      await settle();
    },
    crash: (spec) => exited(spec, 137, "killed"),
    disrupt: (spec) => exited(spec, 143, "disrupted"),
    async [Symbol.asyncDispose]() {
      await runner.close();
      await storage[Symbol.asyncDispose]();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

Deno.test("the runner submits every task at once and is done when each stored a value", async () => {
  await using f = await fixture(3);
  assert.deepEqual(f.session.submitted.map((s) => s.task), [0, 1, 2]);
  for (const spec of f.session.submitted) {
    f.start(spec);
    await f.succeed(spec, spec.task * 10);
  }
  await f.runner.finished();
  assert.equal(f.runner.phase, "done");
  assert.deepEqual(f.runner.tasks.map((t) => t.winner), f.session.submitted.map((s) => s.attempt));
  assert.ok(f.runner.tasks.every((t) => t.resultBytes! > 0), "result sizes are known");
});

Deno.test("a crashed attempt is retried only once its backoff has passed", async () => {
  await using f = await fixture(1, { retryDelayMs: 1000, maxRetries: 2 });
  const [first] = f.session.of(0);
  f.start(first!);
  f.crash(first!);
  await settle();
  await f.clock.advance(999);
  assert.equal(f.session.of(0).length, 1, "not before the delay");
  await f.clock.advance(1);
  assert.equal(f.session.of(0).length, 2, "retried after 1 s");
  const second = f.session.of(0)[1]!;
  f.start(second);
  f.crash(second);
  await settle();
  await f.clock.advance(1999);
  assert.equal(f.session.of(0).length, 2, "the second delay doubles");
  await f.clock.advance(1);
  assert.equal(f.session.of(0).length, 3);
  const third = f.session.of(0)[2]!;
  await f.succeed(third, "ok");
  await f.runner.finished();
  assert.equal(f.runner.tasks[0]!.winner, third.attempt);
  assert.equal(f.runner.progress().retried, 2);
});

Deno.test("a task that crashes past maxRetries fails with WorkerCrashError", async () => {
  await using f = await fixture(2, { maxRetries: 1, retryDelayMs: 10 });
  f.crash(f.session.of(0)[0]!);
  await settle();
  await f.clock.advance(10);
  f.crash(f.session.of(0)[1]!);
  await settle();
  const error = await f.runner.settled(0).then(() => undefined, (e) => e);
  assert.ok(error instanceof WorkerCrashError, String(error));
  assert.equal(error.kind, "crash");
  assert.equal(error.attempts, 2);
  assert.equal(f.runner.phase, "failed", "fail fast by default");
});

Deno.test("a task error fails the job with the remote error and is not retried", async () => {
  await using f = await fixture(1, { maxRetries: 3 });
  await f.throwIn(f.session.of(0)[0]!, "bad input");
  const error = await f.runner.finished().then(() => undefined, (e) => e);
  assert.ok(error instanceof TaskError, String(error));
  assert.equal(error.remoteName, "RangeError");
  assert.equal(error.remoteMessage, "bad input");
  await f.clock.advance(60_000);
  assert.equal(f.session.submitted.length, 1);
});

Deno.test("an attempt past the time limit is cancelled and retried as a timeout", async () => {
  await using f = await fixture(1, { timeoutMs: 5000, maxRetries: 1, retryDelayMs: 10 });
  const [first] = f.session.of(0);
  f.start(first!);
  await f.clock.advance(5000);
  assert.deepEqual(f.session.cancelled, [], "not at the limit itself");
  await f.clock.advance(250);
  assert.deepEqual(f.session.cancelled, [first!.attempt]);
  await f.clock.advance(10);
  assert.equal(f.runner.tasks[0]!.attempts[0]!.outcome, "timeout");
  assert.equal(f.session.of(0).length, 2, "retried");
});

Deno.test("a backend that enforces timeouts itself is not second-guessed", async () => {
  await using f = await fixture(1, { timeoutMs: 1000 });
  f.session.enforcesTimeouts = true;
  f.start(f.session.of(0)[0]!);
  await f.clock.advance(10_000);
  assert.deepEqual(f.session.cancelled, []);
});

Deno.test("a straggler in the tail gets one copy, and the loser is cancelled", async () => {
  await using f = await fixture(5, {
    speculationPercent: 20,
    speculationRuntimePercentile: 50,
    parallelism: 5,
  });
  for (const spec of f.session.submitted) f.start(spec);
  for (const task of [0, 1, 2, 3]) {
    await f.clock.advance(1000);
    await f.succeed(f.session.of(task)[0]!, task);
  }
  assert.equal(f.session.of(4).length, 1, "runtimes of 1 to 4 s: task 4 is not past 2.5 s yet");
  await f.clock.advance(1000);
  assert.equal(f.session.of(4).length, 2, "a speculative copy");
  assert.equal(f.runner.tasks[4]!.attempts[1]!.speculative, true);
  await f.clock.advance(10_000);
  assert.equal(f.session.of(4).length, 2, "at most one copy");
  const [original, copy] = f.session.of(4);
  f.start(copy!);
  await f.succeed(copy!, "first");
  assert.deepEqual(f.session.cancelled, [original!.attempt]);
  await f.runner.finished();
  assert.equal(f.runner.tasks[4]!.winner, copy!.attempt);
});

Deno.test("an attempt that exits 0 after another one won stands down", async () => {
  await using f = await fixture(1);
  const [first] = f.session.of(0);
  const other = { task: 0, attempt: "from-an-earlier-master" };
  f.runner.onEvent({ type: "started", task: 0, attempt: other.attempt, at: new Date() });
  await f.succeed(other, "theirs");
  await f.runner.settled(0);
  assert.equal(f.runner.tasks[0]!.winner, other.attempt);
  assert.ok(f.session.cancelled.includes(first!.attempt), "the own attempt is cancelled");
});

Deno.test("a disrupted attempt is run again without counting against maxRetries", async () => {
  await using f = await fixture(1, { maxRetries: 0, retryDelayMs: 1000 });
  for (let i = 0; i < 3; i++) {
    const spec = f.session.of(0)[i]!;
    f.start(spec);
    f.disrupt(spec);
    await settle();
    await f.clock.advance(1000);
    assert.equal(f.session.of(0).length, i + 2, `disruption ${i + 1} is run again`);
  }
  assert.equal(f.runner.tasks[0]!.crashes, 0);
  await f.succeed(f.session.of(0)[3]!, "at last");
  await f.runner.finished();
  assert.equal(f.runner.phase, "done");
  assert.deepEqual(f.runner.tasks[0]!.attempts.map((a) => a.outcome), [
    "disrupted",
    "disrupted",
    "disrupted",
    "ok",
  ]);
});

Deno.test("retries due while a submission is under way go together in the next one", async () => {
  await using f = await fixture(4, { maxRetries: 0, retryDelayMs: 1000 });
  const creating = Promise.withResolvers<void>();
  f.session.creating = creating.promise;
  f.disrupt(f.session.of(0)[0]!);
  await settle();
  await f.clock.advance(1000);
  assert.deepEqual(f.session.submissions, [[0, 1, 2, 3], [0]], "the first retry goes at once");
  for (const task of [1, 2, 3]) f.disrupt(f.session.of(task)[0]!);
  await settle();
  await f.clock.advance(1000);
  assert.equal(f.session.submissions.length, 2, "the others wait for the submission under way");
  creating.resolve();
  await settle();
  assert.deepEqual(f.session.submissions, [[0, 1, 2, 3], [0], [1, 2, 3]]);
  for (const task of [0, 1, 2, 3]) await f.succeed(f.session.of(task)[1]!, task);
  await f.runner.finished();
  assert.equal(f.runner.phase, "done");
});

Deno.test("retries queued behind a submission are dropped when the job stops meanwhile", async () => {
  await using f = await fixture(2, { maxRetries: 0, retryDelayMs: 1000 });
  const creating = Promise.withResolvers<void>();
  f.session.creating = creating.promise;
  f.disrupt(f.session.of(0)[0]!);
  await settle();
  await f.clock.advance(1000);
  f.disrupt(f.session.of(1)[0]!);
  await settle();
  await f.clock.advance(1000);
  const stopping = f.runner.stop(new Error("stopped by the test"));
  creating.resolve();
  await stopping;
  await settle();
  assert.deepEqual(f.session.submissions, [[0, 1], [0]], "task 1's retry was never submitted");
  assert.equal(f.runner.phase, "interrupted");
});

Deno.test("a crash after disruptions still fails the task past maxRetries", async () => {
  await using f = await fixture(1, { maxRetries: 0, retryDelayMs: 10 });
  f.disrupt(f.session.of(0)[0]!);
  await settle();
  await f.clock.advance(10);
  f.crash(f.session.of(0)[1]!);
  await settle();
  const error = await f.runner.settled(0).then(() => undefined, (e) => e);
  assert.ok(error instanceof WorkerCrashError, String(error));
  assert.equal(error.attempts, 1, "only the crash counts");
});

Deno.test("tasks are known in the order they finish, whatever their index", async () => {
  await using f = await fixture(3, { failFast: false });
  const order: number[] = [];
  const reading = (async () => {
    for (let n = 0;; n++) {
      const task = await f.runner.settledNth(n);
      if (!task) return;
      order.push(task.index);
    }
  })();
  await f.succeed(f.session.of(2)[0]!, "two");
  await f.throwIn(f.session.of(0)[0]!, "zero");
  await f.succeed(f.session.of(1)[0]!, "one");
  await reading;
  assert.deepEqual(order, [2, 0, 1]);
  assert.deepEqual(f.runner.finishOrder, [2, 0, 1]);
});

Deno.test("a losing copy that takes its grace period to stop does not hold up the result", async () => {
  await using f = await fixture(1);
  let endGrace = () => {};
  f.session.grace = new Promise((resolve) => (endGrace = resolve));
  // Our attempt runs when one an earlier master left running stores the result first.
  const [ours] = f.session.of(0);
  f.start(ours!);
  const theirs = { task: 0, attempt: "from-an-earlier-master" };
  f.runner.onEvent({ type: "started", task: 0, attempt: theirs.attempt, at: new Date() });
  await f.succeed(theirs, "theirs");
  const state = await f.runner.settled(0);
  assert.equal(state.winner, theirs.attempt, "done while our attempt still stops");
  assert.deepEqual(f.session.cancelled, [ours!.attempt]);
  assert.equal(state.attempts.find((a) => a.id === ours!.attempt)!.endedAt, undefined);
  endGrace();
  await settle();
  assert.equal(state.attempts.find((a) => a.id === ours!.attempt)!.outcome, "cancelled");
});

Deno.test("the status shows when unfinished tasks last checkpointed, and done tasks' checkpoints go", async () => {
  await using f = await fixture(2);
  const write = (input: number) =>
    f.storage.put(f.layout.checkpoint(input), new TextEncoder().encode("state"));
  await write(0);
  await write(1);
  await f.succeed(f.session.of(0)[0]!, "zero");
  await f.clock.advance(10_000); // the status is written, the checkpoints listed
  assert.equal(await f.storage.stat(f.layout.checkpoint(0)), undefined, "task 0 is done");
  assert.ok(await f.storage.stat(f.layout.checkpoint(1)), "task 1 still needs its own");
  assert.equal(f.runner.tasks[0]!.checkpointAt, undefined);
  const at = f.runner.tasks[1]!.checkpointAt!;
  assert.ok(Math.abs(at - Date.now()) < 60_000, "the checkpoint's own time, from storage");
  await f.succeed(f.session.of(1)[0]!, "one");
  await f.runner.close();
  assert.equal(await f.storage.stat(f.layout.checkpoint(1)), undefined, "gone once done");
});

Deno.test("status pages are rewritten every statusIntervalMs, or ten times as long as a write takes", async () => {
  for (const writeMs of [0, 3000]) {
    const writes: number[] = [];
    let measuring = true;
    await using f = await fixture(1, { statusIntervalMs: 1000 }, (clock) => {
      if (!measuring) return Promise.resolve(); // the final write, as the runner closes
      writes.push(clock.now());
      return new Promise((resolve) => clock.setTimeout(resolve, writeMs));
    });
    const [spec] = f.session.of(0);
    f.start(spec!);
    const begin = f.clock.now();
    for (let t = 0; t < 65_000; t += 250) {
      // Something changes on every tick: the pages always have news.
      f.runner.onEvent({
        type: "waiting",
        task: 0,
        attempt: spec!.attempt,
        at: new Date(),
        detail: `${t}`,
      });
      await f.clock.advance(250);
      await settle();
    }
    measuring = false;
    await f.clock.advance(writeMs); // the write under way ends
    const gaps = writes.slice(1).map((at, i) => at - writes[i]!);
    const expected = writeMs === 0 ? 1000 : 30_000;
    assert.ok(gaps.length >= 2, `${writes.length} writes in 65 s (${writeMs} ms each)`);
    for (const gap of gaps) {
      assert.ok(gap >= expected && gap < expected + 500, `writes of ${writeMs} ms ${gap} ms apart`);
    }
    assert.ok(writes[0]! - begin < 500, "the first write comes at once");
  }
});
