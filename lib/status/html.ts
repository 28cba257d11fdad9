/**
 * The HTML status page: one self-contained file, readable without
 * JavaScript.
 *
 * @module
 */

import type { JobStatus } from "./status.ts";

/** Escape text for HTML. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Render a job's status as an HTML page. */
export function renderStatusHtml(status: JobStatus): string {
  const c = status.counts;
  const failed = status.tasks.filter((t) => t.phase === "failed");
  const rows = status.tasks.slice(0, 2000).map((t) =>
    `<tr><td>${t.task}</td><td class="${t.phase}">${t.phase}${
      t.reused ? " (reused)" : ""
    }</td><td>${t.attempts.length}</td><td>${
      escapeHtml(t.error ?? t.attempts.at(-1)?.detail ?? "")
    }</td></tr>`
  ).join("\n");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>kubeface ${escapeHtml(status.job)}</title>
<style>body{font:14px system-ui,sans-serif;margin:2em}td,th{padding:2px 8px;text-align:left}
.done{color:#080}.failed{color:#b00}.running{color:#05a}</style></head><body>
<h1>${escapeHtml(status.job)}: ${status.phase}</h1>
<p>Backend ${escapeHtml(status.backend)}, storage ${
    escapeHtml(status.storage)
  }, parallelism ${status.parallelism}.
Started ${status.startedAt}, updated ${status.updatedAt}.</p>
<p>${c.total} tasks: ${c.done} done (${c.reused} reused), ${c.running} running, ${c.pending} pending, ${c.failed} failed.</p>
${status.error ? `<p class="failed">${escapeHtml(status.error)}</p>` : ""}
${
    failed.length
      ? `<h2>Failed tasks</h2><ul>${
        failed.map((t) => `<li>Task ${t.task}: ${escapeHtml(t.error ?? "")}</li>`).join("")
      }</ul>`
      : ""
  }
<table><tr><th>task</th><th>state</th><th>attempts</th><th>detail</th></tr>
${rows}
</table></body></html>
`;
}
