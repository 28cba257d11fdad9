/**
 * Hand-built job statuses for status page tests: a small finished job with
 * one task of every outcome, and a large one of many thousand tasks.
 *
 * @module
 */

import type {
  AttemptOutcome,
  AttemptStatus,
  JobStatus,
  TaskStatus,
} from "../../lib/format/status.ts";

const T0 = Date.parse("2026-03-01T09:00:00.000Z");
const at = (seconds: number) => new Date(T0 + seconds * 1000).toISOString();

/** An attempt submitted, started and ended at these seconds after the start. */
function attempt(
  id: string,
  times: [submit: number, start: number | undefined, end: number | undefined],
  outcome?: AttemptOutcome,
  extra: Partial<AttemptStatus> = {},
): AttemptStatus {
  const [submit, start, end] = times;
  return {
    id,
    host: "worker-host",
    submittedAt: at(submit),
    ...(start !== undefined ? { startedAt: at(start) } : {}),
    ...(end !== undefined ? { endedAt: at(end) } : {}),
    ...(outcome ? { outcome } : {}),
    speculative: false,
    ...extra,
  };
}

function base(job: string, tasks: TaskStatus[], parallelism: number): JobStatus {
  const storage = "file:///tmp/kubeface-status-test/";
  const prefix = `${storage}jobs/${job}/`;
  let end = T0;
  for (const t of tasks) {
    for (const a of t.attempts) end = Math.max(end, Date.parse(a.endedAt ?? a.submittedAt));
  }
  const count = (phase: TaskStatus["phase"]) => tasks.filter((t) => t.phase === phase).length;
  let retried = 0;
  let speculative = 0;
  for (const t of tasks) {
    const normal = t.attempts.filter((a) => !a.speculative).length;
    retried += Math.max(0, normal - 1);
    speculative += t.attempts.length - normal;
  }
  return {
    format: 1,
    job,
    backend: "local",
    storage,
    module: "file:///home/me/project/analysis.ts",
    parallelism,
    itemsPerTask: 1,
    inputs: tasks.length,
    phase: count("failed") > 0 ? "failed" : "done",
    startedAt: at(0),
    updatedAt: new Date(end + 500).toISOString(),
    counts: {
      total: tasks.length,
      pending: count("pending"),
      running: count("running"),
      done: count("done"),
      failed: count("failed"),
      reused: tasks.filter((t) => t.reused).length,
      retried,
      speculative,
      elapsedMs: end + 500 - T0,
      etaMs: 0,
    },
    tasks,
    links: { json: `${prefix}status.json`, html: `${prefix}status.html`, prefix },
  };
}

/** The message of the task error in {@linkcode mixedStatus}. */
export const TASK_ERROR_MESSAGE = "TypeError: cannot parse record 2: unexpected <end> of input";

/**
 * A finished job of 8 tasks on 3 slots: done, reused, a task error, a crash
 * retried, a timeout retried, a speculative copy cancelled, and a task that
 * crashed three times. 12 attempts in all.
 */
export function mixedStatus(): JobStatus {
  const ok = (task: number, attempts: AttemptStatus[], extra: Partial<TaskStatus> = {}) => ({
    task,
    phase: "done" as const,
    reused: false,
    winner: attempts.find((a) => a.outcome === "ok")?.id,
    resultBytes: 120,
    attempts,
    ...extra,
  });
  const tasks: TaskStatus[] = [
    ok(0, [attempt("a0", [0, 0.2, 6], "ok")]),
    { task: 1, phase: "done", reused: true, winner: "old", attempts: [] },
    {
      task: 2,
      phase: "failed",
      reused: false,
      error: `Task 2 (input 2) threw ${TASK_ERROR_MESSAGE}`,
      attempts: [attempt("a2", [0, 0.2, 3], "task-error", { detail: "exit code 3" })],
    },
    ok(3, [
      attempt("a3", [0, 0.3, 4], "crash", { detail: "worker exited with signal SIGKILL" }),
      attempt("b3", [5, 6, 11], "ok"),
    ]),
    ok(4, [
      attempt("a4", [0, 3.1, 13], "timeout", { detail: "stopped after the 10 s limit" }),
      attempt("b4", [14, 14.5, 18], "ok"),
    ]),
    ok(5, [
      attempt("a5", [0, 4.1, 19], "ok"),
      attempt("s5", [15, 15.5, 19.1], "cancelled", { speculative: true, detail: "cancelled" }),
    ]),
    ok(6, [attempt("a6", [0, 11.2, 14], "ok")]),
    {
      task: 7,
      phase: "failed",
      reused: false,
      error: "Worker of task 7 (input 7) crashed 3 times: out of memory",
      attempts: [
        attempt("a7", [0, 13.2, 14.6], "crash", { detail: "out of memory" }),
        attempt("b7", [15, 18.1, 19.5], "crash", { detail: "out of memory" }),
        attempt("c7", [20, 20.1, 21], "crash", { detail: "out of memory" }),
      ],
    },
  ];
  return base("mixed-outcomes", tasks, 3);
}

/**
 * A finished job of `n` tasks on `parallelism` slots, each run once for
 * 30 s to 5 min (a deterministic spread), 1 in 97 failing with a task
 * error and 1 in 53 crashing once before it succeeds.
 */
export function largeStatus(n = 10_000, parallelism = 200): JobStatus {
  let seed = 42;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const slotFree: number[] = Array(parallelism).fill(0);
  const run = (task: number, id: string, submit: number) => {
    let slot = 0;
    for (let i = 1; i < parallelism; i++) if (slotFree[i]! < slotFree[slot]!) slot = i;
    const start = Math.max(submit, slotFree[slot]!) + 0.3 + random();
    const end = start + 30 + 270 * random() ** 2;
    slotFree[slot] = end;
    return { id, start, end, submit, task };
  };
  const tasks: TaskStatus[] = [];
  for (let task = 0; task < n; task++) {
    const attempts: AttemptStatus[] = [];
    if (task % 53 === 7) {
      const crash = run(task, `c${task}`, 0);
      attempts.push(attempt(crash.id, [0, crash.start, crash.end], "crash", { detail: "lost" }));
      const again = run(task, `r${task}`, crash.end + 1);
      attempts.push(attempt(again.id, [crash.end + 1, again.start, again.end], "ok"));
    } else {
      const only = run(task, `a${task}`, 0);
      const failed = task % 97 === 5;
      attempts.push(attempt(only.id, [0, only.start, only.end], failed ? "task-error" : "ok"));
    }
    const failed = attempts.at(-1)!.outcome === "task-error";
    tasks.push({
      task,
      phase: failed ? "failed" : "done",
      reused: false,
      ...(failed
        ? { error: `Task ${task} (input ${task}) threw Error: bad input ${task}` }
        : { winner: attempts.at(-1)!.id }),
      attempts,
    });
  }
  return base("large-job", tasks, parallelism);
}
