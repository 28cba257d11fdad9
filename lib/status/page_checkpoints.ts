/**
 * The checkpoints section of the HTML status page: the unfinished tasks that
 * have a checkpoint and when each was last written, the newest first. A
 * rerun of an interrupted job resumes each of them from it.
 *
 * @module
 */

import { escapeHtml } from "./escape.ts";
import type { JobStatus } from "../format/status.ts";

/** Most tasks listed. */
export const CHECKPOINT_ROWS = 100;

function time(iso: string): string {
  return `<time datetime="${escapeHtml(iso)}">${
    escapeHtml(iso.replace("T", " ").replace(/\.\d+Z$/, "Z"))
  }</time>`;
}

/** Tasks with a checkpoint: when they last saved their state. */
export function checkpointsSection(status: JobStatus): string {
  const saved = status.tasks.filter((t) => t.checkpointAt)
    .sort((a, b) => b.checkpointAt!.localeCompare(a.checkpointAt!) || a.task - b.task);
  const shown = saved.slice(0, CHECKPOINT_ROWS);
  const more = saved.length > shown.length
    ? `<p class=muted>… and ${saved.length - shown.length} more; <code>kubeface status ${
      escapeHtml(status.job)
    } --json</code> lists them all.</p>`
    : "";
  const body = saved.length === 0
    ? `<p class=muted>No unfinished task has a checkpoint.</p>`
    : `<table><thead><tr><th>Task</th><th>State</th><th>Attempts</th><th>Last checkpoint</th></tr></thead><tbody>
${
      shown.map((t) =>
        `<tr data-task="${t.task}"><td class=num>${t.task}</td><td>${
          escapeHtml(t.phase)
        }</td><td class=num>${t.attempts.length}</td><td>${time(t.checkpointAt!)}</td></tr>`
      ).join("\n")
    }
</tbody></table>${more}`;
  return `<section id="checkpoints"><h2>Checkpoints <small>${saved.length} unfinished task(s) with one; a rerun resumes them from it</small></h2>
${body}</section>`;
}
