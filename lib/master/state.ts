/**
 * The master's picture of a job: every task, every attempt, and the counts
 * shown in progress lines and status pages.
 *
 * @module
 */

import type { AttemptOutcome, JobPhase, Progress } from "../format/status.ts";

export type { AttemptOutcome, JobPhase, Progress };

/** One attempt at a task. */
export interface AttemptState {
  id: string;
  task: number;
  /** When the master asked the backend to run it (ms since epoch). */
  submittedAt: number;
  startedAt?: number;
  endedAt?: number;
  host?: string;
  /** Started as a speculative copy of a straggler. */
  speculative: boolean;
  outcome?: AttemptOutcome;
  /** A plain sentence about its state or end. */
  detail?: string;
  /** Stopped because it ran past the time limit. */
  timedOut?: boolean;
}

/** Where a task is. */
export type TaskPhase = "pending" | "running" | "done" | "failed";

/** One task. */
export interface TaskState {
  index: number;
  phase: TaskPhase;
  attempts: AttemptState[];
  /** Attempt whose result counts. */
  winner?: string;
  /** The result came from an earlier run of the same job. */
  reused: boolean;
  /** Size of the winning result object, in bytes. */
  resultBytes?: number;
  /** Failed attempts that were not task errors (crashes, timeouts). */
  crashes: number;
  /** When its last checkpoint was written (ms since epoch), while it has one. */
  checkpointAt?: number;
  /** The error that failed the task. */
  error?: Error;
}

/** Count tasks and estimate the time left. */
export function progressOf(
  job: string,
  phase: JobPhase,
  tasks: readonly TaskState[],
  startedAt: number,
  now: number = Date.now(),
): Progress {
  const p: Progress = {
    job,
    phase,
    total: tasks.length,
    pending: 0,
    running: 0,
    done: 0,
    failed: 0,
    reused: 0,
    retried: 0,
    speculative: 0,
    elapsedMs: now - startedAt,
  };
  for (const task of tasks) {
    p[task.phase]++;
    if (task.reused) p.reused++;
    for (const attempt of task.attempts) {
      if (attempt.speculative) p.speculative++;
    }
    const normal = task.attempts.filter((a) => !a.speculative).length;
    if (normal > 1) p.retried += normal - 1;
  }
  const finishedHere = p.done - p.reused;
  const left = p.total - p.done - p.failed;
  if (finishedHere > 0 && left > 0) p.etaMs = Math.round((p.elapsedMs / finishedHere) * left);
  else if (left === 0) p.etaMs = 0;
  return p;
}
