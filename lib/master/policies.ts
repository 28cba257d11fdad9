/**
 * The job loop's decisions, as pure functions of what the master knows:
 * what an ended attempt's outcome is, what happens to its task next, how
 * long to wait before a retry, which attempts ran past their time limit,
 * and which stragglers get a speculative copy.
 *
 * @module
 */

import type { ExitReason } from "../backends/backend.ts";
import type { ResolvedJobOptions } from "../options.ts";
import type { AttemptOutcome, AttemptState, TaskState } from "./state.ts";

/** Longest delay between retries of one task. */
export const MAX_RETRY_DELAY_MS = 60_000;
/** No attempt younger than this gets a speculative copy: copies pay only for long tasks. */
export const SPECULATION_FLOOR_MS = 1000;

/** What storage and the backend say about one ended attempt. */
export interface EndFacts {
  /** What the attempt itself stored: a value, the task's error, or nothing. */
  stored: "ok" | "error" | undefined;
  /** Some attempt of the task stored a value (this one or another). */
  won: boolean;
  /** The master stopped it for running past the time limit. */
  timedOut: boolean;
  reason: ExitReason;
  exitCode: number | undefined;
}

/** How an attempt ended, from what it stored and how its worker exited. */
export function attemptOutcome(facts: EndFacts): AttemptOutcome {
  if (facts.stored === "ok") return "ok";
  if (facts.stored === "error") return "task-error";
  if (facts.timedOut || facts.reason === "timeout") return "timeout";
  // Stopped, or stood down (exit 0 without a result) because another attempt had won.
  if (facts.reason === "cancelled" || (facts.won && facts.exitCode === 0)) return "cancelled";
  if (facts.reason === "disrupted") return "disrupted";
  return "crash";
}

/** What happens to a task after one of its attempts ended. */
export type Next =
  /** Done: the winning attempt's value counts. */
  | { action: "done"; winner: string }
  /** Another attempt of the task still runs; it decides. */
  | { action: "wait" }
  /** Back to pending, for a later master (the job is stopping). */
  | { action: "requeue" }
  /** Run it again after a backoff. */
  | { action: "retry" }
  /** Failed for good. */
  | { action: "fail"; kind: "task" | "crash" | "timeout" | "infrastructure" };

/** Attempts of a task that failed (crashed, timed out or threw); a disruption is no failure. */
export function failedAttempts(
  task: { attempts: readonly { outcome?: AttemptOutcome }[] },
): number {
  return task.attempts.filter((a) =>
    a.outcome !== undefined && a.outcome !== "ok" && a.outcome !== "cancelled" &&
    a.outcome !== "disrupted"
  ).length;
}

/**
 * Decide what happens to a task whose attempt ended with `outcome`.
 * `task.crashes` must already count this attempt when it crashed. A
 * disrupted attempt (preempted, drained, stopped from outside) is run
 * again whatever `maxRetries` says: it did not fail.
 */
export function nextStep(input: {
  task: TaskState;
  outcome: AttemptOutcome;
  /** The attempt whose value counts, if any attempt of the task stored one. */
  winner: string | undefined;
  reason: ExitReason;
  /** The job is still running (not stopping). */
  running: boolean;
  options: Pick<ResolvedJobOptions, "maxRetries" | "retryTaskErrors">;
}): Next {
  const { task, outcome, winner, options } = input;
  if (winner) return { action: "done", winner };
  const stillRunning = task.attempts.some((a) => a.endedAt === undefined);
  if (outcome === "cancelled" || !input.running) {
    return stillRunning ? { action: "wait" } : { action: "requeue" };
  }
  if (outcome === "task-error") {
    if (options.retryTaskErrors && failedAttempts(task) <= options.maxRetries) {
      return { action: "retry" };
    }
    return stillRunning ? { action: "wait" } : { action: "fail", kind: "task" };
  }
  const unstartable = input.reason === "unstartable";
  if (unstartable) return { action: "fail", kind: "infrastructure" };
  if (stillRunning) return { action: "wait" };
  if (outcome === "disrupted") return { action: "retry" };
  if (task.crashes <= options.maxRetries) return { action: "retry" };
  return { action: "fail", kind: outcome === "timeout" ? "timeout" : "crash" };
}

/**
 * Milliseconds before the next attempt of a task that failed `failures`
 * times: `baseMs` doubling with each failure, up to a minute, times a
 * jitter factor from 0.5 to 1 (`random` is from 0 to 1).
 */
export function retryDelayMs(failures: number, baseMs: number, random: number): number {
  return Math.min(MAX_RETRY_DELAY_MS, baseMs * 2 ** Math.max(0, failures - 1)) *
    (0.5 + random / 2);
}

/** Running attempts that passed the time limit and were not stopped for it yet. */
export function lateAttempts(
  running: readonly AttemptState[],
  now: number,
  timeoutMs: number,
): AttemptState[] {
  if (timeoutMs <= 0) return [];
  return running.filter((a) =>
    !a.timedOut && a.startedAt !== undefined && now - a.startedAt > timeoutMs
  );
}

/**
 * Tasks to start a speculative copy of, as the original kubeface chose
 * them: only in the tail of the job (at most `speculationPercent` of the
 * tasks unfinished), only a task with exactly one live attempt and fewer
 * copies than `speculationMaxReruns`, running longer than the
 * `speculationRuntimePercentile` of finished runtimes (and at least
 * {@linkcode SPECULATION_FLOOR_MS}), and no more than the free slots.
 */
export function stragglers(input: {
  tasks: readonly TaskState[];
  /** Tasks done or failed for good. */
  settled: number;
  /** Runtimes of attempts that succeeded, in milliseconds. */
  runtimes: readonly number[];
  /** Attempts not ended yet (queued or running). */
  live: number;
  now: number;
  options: Pick<
    ResolvedJobOptions,
    | "parallelism"
    | "speculationPercent"
    | "speculationRuntimePercentile"
    | "speculationMaxReruns"
  >;
}): TaskState[] {
  const { tasks, runtimes, now, options: o } = input;
  if (o.speculationPercent <= 0 || o.speculationMaxReruns <= 0 || runtimes.length === 0) return [];
  if (tasks.length - input.settled > (o.speculationPercent / 100) * tasks.length) return [];
  const sorted = [...runtimes].sort((a, b) => a - b);
  const rank = Math.ceil((o.speculationRuntimePercentile / 100) * sorted.length) - 1;
  const threshold = Math.max(
    sorted[Math.min(sorted.length - 1, Math.max(0, rank))]!,
    SPECULATION_FLOOR_MS,
  );
  let slots = o.parallelism - input.live;
  const chosen: TaskState[] = [];
  for (const task of tasks) {
    if (slots <= 0) break;
    if (task.phase !== "running") continue;
    const live = task.attempts.filter((a) => a.endedAt === undefined);
    const copies = task.attempts.filter((a) => a.speculative).length;
    if (live.length !== 1 || live[0]!.startedAt === undefined) continue;
    if (copies >= o.speculationMaxReruns) continue;
    if (now - live[0]!.startedAt <= threshold) continue;
    chosen.push(task);
    slots--;
  }
  return chosen;
}
