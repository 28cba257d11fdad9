/**
 * Figures the HTML status page shows without JavaScript: run times of
 * attempts, the slowest tasks, duration percentiles, and the commands and
 * links that reach a task's logs and result objects.
 *
 * @module
 */

import type { AttemptStatus, JobStatus, TaskStatus } from "../format/status.ts";

/** Milliseconds as `850ms`, `4.2s`, `3m05s` or `1h02m`. */
export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return "?";
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(Math.floor(s % 60)).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}

/** How long an attempt ran (start to end, or to `until` while it runs). */
export function runMs(attempt: AttemptStatus, until: number): number | undefined {
  if (attempt.startedAt === undefined) return undefined;
  const end = attempt.endedAt === undefined ? until : Date.parse(attempt.endedAt);
  return Math.max(0, end - Date.parse(attempt.startedAt));
}

/** One of the slowest tasks. */
export interface SlowTask {
  task: TaskStatus;
  /** The attempt that counts: the winner, else the longest. */
  attempt: AttemptStatus;
  ms: number;
}

/** The `limit` tasks whose counting attempt ran longest, longest first. */
export function slowestTasks(status: JobStatus, limit: number): SlowTask[] {
  const until = Date.parse(status.updatedAt);
  const slow: SlowTask[] = [];
  for (const task of status.tasks) {
    let best: SlowTask | undefined;
    for (const attempt of task.attempts) {
      const ms = runMs(attempt, until);
      if (ms === undefined) continue;
      if (attempt.id === task.winner) {
        best = { task, attempt, ms };
        break;
      }
      if (!best || ms > best.ms) best = { task, attempt, ms };
    }
    if (best) slow.push(best);
  }
  return slow.sort((a, b) => b.ms - a.ms || a.task.task - b.task.task).slice(0, limit);
}

/** Percentiles of the run times of attempts that ended well. */
export interface DurationStats {
  count: number;
  medianMs: number;
  p90Ms: number;
  maxMs: number;
}

/** Run-time percentiles of the successful attempts, if any ran. */
export function durationStats(status: JobStatus): DurationStats | undefined {
  const times: number[] = [];
  for (const task of status.tasks) {
    for (const attempt of task.attempts) {
      if (attempt.outcome !== "ok" || attempt.endedAt === undefined) continue;
      const ms = runMs(attempt, 0);
      if (ms !== undefined) times.push(ms);
    }
  }
  if (times.length === 0) return undefined;
  times.sort((a, b) => a - b);
  const at = (p: number) => times[Math.min(times.length - 1, Math.ceil(p * times.length) - 1)]!;
  return { count: times.length, medianMs: at(0.5), p90Ms: at(0.9), maxMs: times.at(-1)! };
}

/** Number of attempts of every task. */
export function attemptCount(status: JobStatus): number {
  return status.tasks.reduce((n, t) => n + t.attempts.length, 0);
}

/** Quote a shell word when it needs it. */
function shellWord(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replaceAll("'", `'\\''`)}'`;
}

/** The command that prints a task's logs. */
export function logsCommand(status: JobStatus, task: number): string {
  return `kubeface logs ${shellWord(status.job)} ${task} --storage ${shellWord(status.storage)}`;
}

/** The command that prints an attempt's result object, decoded. */
export function catCommand(status: JobStatus, key: string): string {
  return `kubeface cat ${shellWord(status.links.prefix + key)}`;
}

/** Key of an attempt's log, relative to the job prefix (and to the page). */
export function logKey(task: number, attempt: string): string {
  return `logs/${task}/${attempt}.log`;
}

/** Key of an attempt's result object, relative to the job prefix, if it wrote one. */
export function resultKey(task: number, attempt: AttemptStatus): string | undefined {
  if (attempt.outcome === "ok") return `results/${task}/${attempt.id}.ok`;
  if (attempt.outcome === "task-error") return `results/${task}/${attempt.id}.error`;
  return undefined;
}
