/**
 * The job loop's policies as pure functions: outcomes, what happens next,
 * backoff, timeouts and speculation.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  attemptOutcome,
  type EndFacts,
  failedAttempts,
  lateAttempts,
  MAX_RETRY_DELAY_MS,
  nextStep,
  retryDelayMs,
  SPECULATION_FLOOR_MS,
  stragglers,
} from "../lib/master/policies.ts";
import type { AttemptState, TaskState } from "../lib/master/state.ts";

const ended: EndFacts = {
  stored: undefined,
  won: false,
  timedOut: false,
  reason: "exited",
  exitCode: 1,
};

function attempt(id: string, fields: Partial<AttemptState> = {}): AttemptState {
  return { id, task: 0, submittedAt: 0, speculative: false, ...fields };
}

function task(index: number, fields: Partial<TaskState> = {}): TaskState {
  return { index, phase: "running", attempts: [], reused: false, crashes: 0, ...fields };
}

Deno.test("an attempt's outcome comes from what it stored first, then from how it exited", () => {
  assert.equal(attemptOutcome({ ...ended, stored: "ok", reason: "killed" }), "ok");
  assert.equal(attemptOutcome({ ...ended, stored: "error", exitCode: 3 }), "task-error");
  assert.equal(attemptOutcome({ ...ended, timedOut: true, reason: "cancelled" }), "timeout");
  assert.equal(attemptOutcome({ ...ended, reason: "timeout" }), "timeout");
  assert.equal(attemptOutcome({ ...ended, reason: "cancelled" }), "cancelled");
  assert.equal(attemptOutcome({ ...ended, won: true, exitCode: 0 }), "cancelled", "stood down");
  assert.equal(attemptOutcome({ ...ended, won: true, exitCode: 137 }), "crash");
  assert.equal(attemptOutcome({ ...ended, exitCode: 0 }), "crash", "exit 0 without a result");
  assert.equal(attemptOutcome({ ...ended, reason: "oom", exitCode: undefined }), "crash");
});

Deno.test("a task is done as soon as any attempt stored a value", () => {
  const t = task(0, { attempts: [attempt("a", { endedAt: 5 }), attempt("b")] });
  const next = nextStep({
    task: t,
    outcome: "crash",
    winner: "b",
    reason: "killed",
    running: true,
    options: { maxRetries: 0, retryTaskErrors: false },
  });
  assert.deepEqual(next, { action: "done", winner: "b" });
});

Deno.test("a crash is retried up to maxRetries, and waits while a copy still runs", () => {
  const options = { maxRetries: 2, retryTaskErrors: false };
  const base = { outcome: "crash" as const, winner: undefined, reason: "killed" as const };
  const alone = task(0, { crashes: 2, attempts: [attempt("a", { endedAt: 1 })] });
  assert.deepEqual(nextStep({ ...base, task: alone, running: true, options }), {
    action: "retry",
  });
  const spent = task(0, { crashes: 3, attempts: [attempt("a", { endedAt: 1 })] });
  assert.deepEqual(nextStep({ ...base, task: spent, running: true, options }), {
    action: "fail",
    kind: "crash",
  });
  const copy = task(0, { crashes: 3, attempts: [attempt("a", { endedAt: 1 }), attempt("b")] });
  assert.deepEqual(nextStep({ ...base, task: copy, running: true, options }), { action: "wait" });
});

Deno.test("an attempt that cannot start fails its task at once, whatever the retries left", () => {
  const t = task(0, { crashes: 1, attempts: [attempt("a", { endedAt: 1 }), attempt("b")] });
  assert.deepEqual(
    nextStep({
      task: t,
      outcome: "crash",
      winner: undefined,
      reason: "unstartable",
      running: true,
      options: { maxRetries: 5, retryTaskErrors: false },
    }),
    { action: "fail", kind: "infrastructure" },
  );
});

Deno.test("a timeout past the retries fails as a timeout", () => {
  const t = task(0, { crashes: 1, attempts: [attempt("a", { endedAt: 1, outcome: "timeout" })] });
  assert.deepEqual(
    nextStep({
      task: t,
      outcome: "timeout",
      winner: undefined,
      reason: "cancelled",
      running: true,
      options: { maxRetries: 0, retryTaskErrors: false },
    }),
    { action: "fail", kind: "timeout" },
  );
});

Deno.test("a task error fails the task unless task errors are retried", () => {
  const failed = [attempt("a", { endedAt: 1, outcome: "task-error" })];
  const input = {
    task: task(0, { attempts: failed }),
    outcome: "task-error" as const,
    winner: undefined,
    reason: "exited" as const,
    running: true,
  };
  assert.deepEqual(nextStep({ ...input, options: { maxRetries: 1, retryTaskErrors: false } }), {
    action: "fail",
    kind: "task",
  });
  assert.deepEqual(nextStep({ ...input, options: { maxRetries: 1, retryTaskErrors: true } }), {
    action: "retry",
  });
  const twice = task(0, {
    attempts: [...failed, attempt("b", { endedAt: 2, outcome: "task-error" })],
  });
  assert.deepEqual(
    nextStep({ ...input, task: twice, options: { maxRetries: 1, retryTaskErrors: true } }),
    { action: "fail", kind: "task" },
  );
});

Deno.test("a stopped attempt goes back to pending for a later master, unless a copy runs", () => {
  const options = { maxRetries: 2, retryTaskErrors: false };
  const base = { winner: undefined, reason: "cancelled" as const, options };
  const alone = task(0, { attempts: [attempt("a", { endedAt: 1 })] });
  assert.deepEqual(nextStep({ ...base, task: alone, outcome: "cancelled", running: true }), {
    action: "requeue",
  });
  assert.deepEqual(nextStep({ ...base, task: alone, outcome: "crash", running: false }), {
    action: "requeue",
  });
  const copy = task(0, { attempts: [attempt("a", { endedAt: 1 }), attempt("b")] });
  assert.deepEqual(nextStep({ ...base, task: copy, outcome: "cancelled", running: true }), {
    action: "wait",
  });
});

Deno.test("the retry delay doubles per failure, keeps half to all of it, and stops at a minute", () => {
  assert.equal(retryDelayMs(1, 1000, 1), 1000);
  assert.equal(retryDelayMs(2, 1000, 1), 2000);
  assert.equal(retryDelayMs(3, 1000, 0), 2000, "half of 4 s with the least jitter");
  assert.equal(retryDelayMs(20, 1000, 1), MAX_RETRY_DELAY_MS);
  assert.equal(retryDelayMs(1, 0, 0.7), 0);
});

Deno.test("only started attempts past the time limit are late, and only once", () => {
  const running = [
    attempt("old", { startedAt: 0 }),
    attempt("young", { startedAt: 900 }),
    attempt("queued"),
    attempt("stopped", { startedAt: 0, timedOut: true }),
  ];
  assert.deepEqual(lateAttempts(running, 1000, 500).map((a) => a.id), ["old"]);
  assert.deepEqual(lateAttempts(running, 1000, 0), [], "0 means no limit");
});

Deno.test("stragglers get a copy only in the tail, past the percentile and the floor", () => {
  const options = {
    parallelism: 4,
    speculationPercent: 20,
    speculationRuntimePercentile: 50,
    speculationMaxReruns: 1,
  };
  const now = 100_000;
  const running = (index: number, startedAt: number) =>
    task(index, { attempts: [attempt(`a${index}`, { task: index, startedAt })] });
  const done = (index: number) => task(index, { phase: "done" });
  const tasks = [
    ...Array.from({ length: 8 }, (_, i) => done(i)),
    running(8, now - 5_000), // runs longer than the median of 2 s
    running(9, now - 1_500), // not past it
  ];
  const runtimes = [1000, 2000, 2000, 3000];
  const pick = (over: Partial<Parameters<typeof stragglers>[0]>) =>
    stragglers({ tasks, settled: 8, runtimes, live: 2, now, options, ...over }).map((t) => t.index);
  assert.deepEqual(pick({}), [8]);
  assert.deepEqual(pick({ settled: 7 }), [], "3 of 10 unfinished: not the tail yet");
  assert.deepEqual(pick({ live: 4 }), [], "no free slot");
  assert.deepEqual(pick({ runtimes: [] }), [], "nothing finished to compare with");
  assert.deepEqual(
    pick({ runtimes: [10, 20], now: tasks[8]!.attempts[0]!.startedAt! + SPECULATION_FLOOR_MS }),
    [],
    "never before the floor",
  );
  assert.deepEqual(pick({ options: { ...options, speculationPercent: 0 } }), [], "off");
  const copied = task(8, {
    attempts: [
      attempt("a8", { task: 8, startedAt: now - 5_000 }),
      attempt("c8", { task: 8, speculative: true, endedAt: now - 10 }),
    ],
  });
  assert.deepEqual(pick({ tasks: [...tasks.slice(0, 8), copied, tasks[9]!] }), [], "max reruns");
});

Deno.test("an attempt stopped from outside is disrupted, run again whatever the retries used, and no failure", () => {
  assert.equal(attemptOutcome({ ...ended, reason: "disrupted", exitCode: 143 }), "disrupted");
  assert.equal(
    attemptOutcome({ ...ended, reason: "disrupted", exitCode: 143, timedOut: true }),
    "timeout",
    "a stop the master asked for at the time limit is a timeout",
  );
  assert.equal(
    attemptOutcome({ ...ended, reason: "disrupted", stored: "ok" }),
    "ok",
    "a task that returned within its grace period counts",
  );
  const disrupted = attempt("a", { endedAt: 5, outcome: "disrupted" });
  const t = task(0, { attempts: [disrupted], crashes: 3 });
  const options = { maxRetries: 0, retryTaskErrors: false };
  assert.deepEqual(
    nextStep({
      task: t,
      outcome: "disrupted",
      winner: undefined,
      reason: "disrupted",
      running: true,
      options,
    }),
    { action: "retry" },
  );
  assert.deepEqual(
    nextStep({
      task: t,
      outcome: "disrupted",
      winner: undefined,
      reason: "disrupted",
      running: false,
      options,
    }),
    { action: "requeue" },
    "a stopping job leaves it to a later master",
  );
  assert.equal(failedAttempts(t), 0);
});
