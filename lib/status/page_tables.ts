/**
 * The server-rendered tables of the HTML status page: failed tasks and the
 * slowest tasks, each capped so a page of 10,000 tasks stays small.
 *
 * @module
 */

import { escapeHtml, plainText } from "./escape.ts";
import { catCommand, formatMs, logKey, logsCommand, resultKey, slowestTasks } from "./page_data.ts";
import { OUTCOME_COLOURS, OUTCOME_LABELS } from "./page_style.ts";
import type { AttemptStatus, JobStatus, TaskStatus } from "../format/status.ts";

/** Most failed tasks listed. */
export const FAILED_ROWS = 100;
/** Most slow tasks listed. */
export const SLOWEST_ROWS = 20;

function outcomeCell(attempt: AttemptStatus): string {
  const label = attempt.outcome
    ? OUTCOME_LABELS[attempt.outcome]
    : attempt.startedAt === undefined
    ? "waiting"
    : "running";
  return `<span class="outcome" style="color:${OUTCOME_COLOURS[attempt.outcome ?? "running"]}">${
    escapeHtml(label)
  }</span>${attempt.speculative ? " <span class=muted>(speculative)</span>" : ""}`;
}

/** Links to each attempt's log, and to its result object when it wrote one. */
function attemptLinks(task: TaskStatus): string {
  return task.attempts.map((a, i) => {
    const result = resultKey(task.task, a);
    const n = i + 1;
    return `<a href="${escapeHtml(logKey(task.task, a.id))}" title="attempt ${
      escapeHtml(a.id)
    }">log ${n}</a>${result ? ` · <a href="${escapeHtml(result)}">result ${n}</a>` : ""}`;
  }).join("<br>");
}

function failedRow(status: JobStatus, task: TaskStatus): string {
  const last = task.attempts.at(-1);
  const errorAttempt = [...task.attempts].reverse().find((a) => a.outcome === "task-error");
  const result = errorAttempt && resultKey(task.task, errorAttempt);
  const message = task.error ?? last?.detail ?? "failed";
  return `<tr data-task="${task.task}"><td class=num>${task.task}</td><td class=num>${task.attempts.length}</td><td>${
    last ? outcomeCell(last) : ""
  }</td><td class=msg>${escapeHtml(plainText(message))}</td><td>${
    attemptLinks(task)
  }<details><summary>commands</summary><code>${escapeHtml(logsCommand(status, task.task))}</code>${
    result ? `<br><code>${escapeHtml(catCommand(status, result))}</code>` : ""
  }</details></td></tr>`;
}

/** The failed tasks, first ones first, with their errors and where their logs are. */
export function failedSection(status: JobStatus): string {
  const failed = status.tasks.filter((t) => t.phase === "failed");
  const shown = failed.slice(0, FAILED_ROWS);
  const more = failed.length > shown.length
    ? `<p class=muted>… and ${failed.length - shown.length} more; <code>kubeface status ${
      escapeHtml(status.job)
    } --json</code> lists them all.</p>`
    : "";
  const body = failed.length === 0
    ? `<p class=muted>No task failed.</p>`
    : `<table><thead><tr><th>Task</th><th>Attempts</th><th>Last attempt</th><th>Error</th><th>Logs and results</th></tr></thead><tbody>
${shown.map((t) => failedRow(status, t)).join("\n")}
</tbody></table>${more}`;
  return `<section id="failed"><h2>Failed tasks <small>${failed.length}</small></h2>
${body}</section>`;
}

/** The slowest tasks, with their run times and logs. */
export function slowestSection(status: JobStatus): string {
  const slow = slowestTasks(status, SLOWEST_ROWS);
  const body = slow.length === 0
    ? `<p class=muted>No task has started yet.</p>`
    : `<table><thead><tr><th>Task</th><th>Run time</th><th>Attempts</th><th>Outcome</th><th>Host</th><th>Detail</th><th>Log</th></tr></thead><tbody>
${
      slow.map(({ task, attempt, ms }) =>
        `<tr data-task="${task.task}"><td class=num>${task.task}</td><td class=num>${formatMs(ms)}${
          attempt.endedAt === undefined ? " <span class=muted>so far</span>" : ""
        }</td><td class=num>${task.attempts.length}</td><td>${outcomeCell(attempt)}</td><td>${
          escapeHtml(attempt.host ?? "")
        }</td><td class=msg>${
          escapeHtml(
            plainText(task.error ?? (attempt.outcome === "ok" ? "" : attempt.detail ?? "")),
          )
        }</td><td><a href="${escapeHtml(logKey(task.task, attempt.id))}">log</a></td></tr>`
      ).join("\n")
    }
</tbody></table>`;
  return `<section id="slowest"><h2>Slowest tasks <small>top ${SLOWEST_ROWS}</small></h2>
${body}</section>`;
}
