/**
 * The HTML status page: one self-contained file (no external resources).
 * The summary, the failed tasks and the slowest tasks are plain HTML, so the
 * page reads without JavaScript; a small inline script draws the timeline
 * and the histogram of run times on canvases from the status embedded as
 * JSON, and keeps a running job's page live.
 *
 * @module
 */

import { escapeHtml, plainText, scriptJson } from "./escape.ts";
import { attemptCount, durationStats, formatMs } from "./page_data.ts";
import { PAGE_SCRIPT } from "./page_script.ts";
import { OUTCOME_COLOURS, OUTCOME_LABELS, PAGE_CSS } from "./page_style.ts";
import { failedSection, slowestSection } from "./page_tables.ts";
import { checkpointsSection } from "./page_checkpoints.ts";
import type { JobStatus } from "../format/status.ts";

export { escapeHtml };

/** Job phases during which the page keeps refreshing itself. */
const LIVE_PHASES = new Set(["preparing", "running"]);

const COUNTS = [
  ["total", "tasks"],
  ["pending", "pending"],
  ["running", "running"],
  ["done", "done"],
  ["failed", "failed"],
  ["reused", "reused"],
  ["retried", "retried"],
  ["speculative", "speculative"],
] as const;

function time(iso: string): string {
  return `<time datetime="${escapeHtml(iso)}">${
    escapeHtml(iso.replace("T", " ").replace(/\.\d+Z$/, "Z"))
  }</time>`;
}

/** One fact; with a `title`, the value is clipped to one line and whole on hover. */
function fact(label: string, html: string, title?: string): string {
  return `<div><dt>${label}</dt><dd${
    title ? ` class="clip" title="${escapeHtml(title)}"` : ""
  }>${html}</dd></div>`;
}

function progressBar(status: JobStatus): string {
  const c = status.counts;
  const total = Math.max(1, c.total);
  const part = (n: number, colour: string, what: string) =>
    n > 0
      ? `<span style="width:${
        (100 * n / total).toFixed(3)
      }%;background:${colour}" title="${n} ${what}"></span>`
      : "";
  return `<div class="bar" role="img" aria-label="${c.done} of ${c.total} tasks done">${
    part(c.done - c.reused, OUTCOME_COLOURS.ok, "done")
  }${part(c.reused, "#8fcf9f", "reused")}${
    part(c.failed, OUTCOME_COLOURS["task-error"], "failed")
  }${part(c.running, OUTCOME_COLOURS.running, "running")}</div>`;
}

function summarySection(status: JobStatus): string {
  const c = status.counts;
  const live = LIVE_PHASES.has(status.phase);
  const eta = !live ? "—" : c.etaMs === undefined ? "unknown yet" : formatMs(c.etaMs);
  const facts = [
    fact("Backend", escapeHtml(status.backend)),
    fact("Storage", escapeHtml(status.storage), status.storage),
    fact("Module", escapeHtml(status.module), status.module),
    fact("Parallelism", String(status.parallelism)),
    fact(
      "Inputs",
      `${status.inputs}${status.itemsPerTask > 1 ? ` (${status.itemsPerTask} per task)` : ""}`,
    ),
    fact("Started", time(status.startedAt)),
    fact("Elapsed", `<span data-field="elapsed">${formatMs(c.elapsedMs)}</span>`),
    fact("ETA", `<span data-field="eta">${eta}</span>`),
    fact(
      "Updated",
      `${time(status.updatedAt)}${live ? ` <span id="updated-ago" class=muted></span>` : ""}`,
    ),
  ];
  const counts = COUNTS.map(([key, label]) =>
    `<div class="${key}" data-count="${key}"><dt>${label}</dt><dd>${c[key]}</dd></div>`
  );
  return `<section id="summary">
<dl class="facts">${facts.join("")}</dl>
<dl class="counts">${counts.join("")}</dl>
${progressBar(status)}
${status.error ? `<p class="error" id="job-error">${escapeHtml(plainText(status.error))}</p>` : ""}
</section>`;
}

function legend(): string {
  const items = Object.entries(OUTCOME_LABELS).map(([kind, label]) =>
    `<li><i style="background:${
      OUTCOME_COLOURS[kind as keyof typeof OUTCOME_COLOURS]
    }"></i>${label}</li>`
  );
  items.push(
    `<li><i class="wait" style="background:${OUTCOME_COLOURS.running}"></i>waiting to start</li>`,
    `<li><i class="spec" style="background:${OUTCOME_COLOURS.cancelled}"></i>speculative copy</li>`,
  );
  return `<ul class="legend">${items.join("")}</ul>`;
}

function chartsSection(status: JobStatus): string {
  const attempts = attemptCount(status);
  const stats = durationStats(status);
  const reused = status.counts.reused > 0
    ? ` ${status.counts.reused} reused task(s) ran in an earlier run and are not drawn.`
    : "";
  return `<section id="timeline-section">
<h2>Timeline <small>${attempts} attempt(s), one bar each, from submit to start to end; one row per worker slot.${reused}</small>
<span class="rows" hidden><button type="button" data-rows="slots" aria-pressed="true">slots</button><button type="button" data-rows="tasks" aria-pressed="false">tasks</button></span></h2>
${legend()}
<div class="chart"><canvas id="timeline" data-bars="0" height="0"></canvas></div>
<noscript><p class="muted">The timeline and the histogram are drawn by the page's script; enable JavaScript to see them.</p></noscript>
</section>
<section id="histogram-section">
<h2>Run times <small>${
    stats
      ? `${stats.count} successful attempt(s): median ${
        formatMs(stats.medianMs)
      }, 90th percentile ${formatMs(stats.p90Ms)}, longest ${formatMs(stats.maxMs)}`
      : "no attempt has finished yet"
  }</small></h2>
<div class="chart"><canvas id="histogram" height="0"></canvas></div>
</section>`;
}

/**
 * Render a job's status as one self-contained HTML page.
 *
 * @param status The job's status, as in `status.json`.
 * @returns The page.
 */
export function renderStatusHtml(status: JobStatus): string {
  const live = LIVE_PHASES.has(status.phase);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(status.job)}: ${status.phase} · kubeface</title>
${live ? `<noscript><meta http-equiv="refresh" content="30"></noscript>` : ""}
<style>${PAGE_CSS}</style></head>
<body data-phase="${status.phase}"><main id="page">
<header><h1><span class="key">${
    escapeHtml(status.job)
  }</span> <span class="phase phase-${status.phase}">${status.phase}</span></h1></header>
${summarySection(status)}
${chartsSection(status)}
${failedSection(status)}
${slowestSection(status)}
${checkpointsSection(status)}
<footer>kubeface status page · <a href="status.json">status.json</a> · job objects under <code>${
    escapeHtml(status.links.prefix)
  }</code></footer>
<script type="application/json" id="kubeface-status">${scriptJson(status)}</script>
</main>
<script>${PAGE_SCRIPT}</script>
</body></html>
`;
}
