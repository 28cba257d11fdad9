/**
 * Writing status pages: the JSON page of a job (`jobs/<key>/status.json`),
 * its HTML rendering, and the small summary `kubeface jobs` lists
 * (`index/<key>.json`); their format is in `lib/format/status.ts`.
 *
 * @module
 */

import type { JobLayout } from "../format/layout.ts";
import { type JobFacts, type JobStatus, type Progress, summaryOf } from "../format/status.ts";
import type { TaskState } from "../master/state.ts";
import { writeJson } from "../format/json.ts";
import type { Storage } from "../storage/storage.ts";
import { renderStatusHtml } from "./html.ts";

const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

/** The master's picture of a job at one moment. */
export interface JobSnapshot {
  /** Counts and phase. */
  progress: Progress;
  /** When the master started the job (ms since epoch). */
  startedAt: number;
  /** Now, as the master's clock says (ms since epoch). */
  now: number;
  /** The error that ended the job, if any. */
  error: Error | undefined;
  tasks: readonly TaskState[];
}

/** Build the status of a running (or finished) job. */
export function buildStatus(snapshot: JobSnapshot, facts: JobFacts, layout: JobLayout): JobStatus {
  const { job: _job, phase, ...counts } = snapshot.progress;
  return {
    format: 1,
    ...facts,
    phase,
    startedAt: new Date(snapshot.startedAt).toISOString(),
    updatedAt: new Date(snapshot.now).toISOString(),
    counts,
    ...(snapshot.error ? { error: snapshot.error.message } : {}),
    tasks: snapshot.tasks.map((t) => ({
      task: t.index,
      phase: t.phase,
      reused: t.reused,
      ...(t.winner ? { winner: t.winner } : {}),
      ...(t.resultBytes !== undefined ? { resultBytes: t.resultBytes } : {}),
      ...(t.error ? { error: t.error.message } : {}),
      ...(t.checkpointAt !== undefined ? { checkpointAt: iso(t.checkpointAt) } : {}),
      attempts: t.attempts.map((a) => ({
        id: a.id,
        host: a.host,
        submittedAt: iso(a.submittedAt)!,
        startedAt: iso(a.startedAt),
        endedAt: iso(a.endedAt),
        outcome: a.outcome,
        speculative: a.speculative,
        detail: a.detail,
      })),
    })),
    links: linksOf(facts, layout),
  };
}

function linksOf(facts: JobFacts, layout: JobLayout): JobStatus["links"] {
  return {
    json: facts.storage + layout.statusJson,
    html: facts.storage + layout.statusHtml,
    prefix: facts.storage + layout.prefix,
  };
}

/** The status of a job whose inputs are being uploaded (or whose upload stopped). */
export function preparingStatus(
  facts: JobFacts,
  layout: JobLayout,
  at: { startedAt: number; now: number; phase: "preparing" | "interrupted" },
  error?: Error,
): JobStatus {
  return {
    format: 1,
    ...facts,
    phase: at.phase,
    startedAt: new Date(at.startedAt).toISOString(),
    updatedAt: new Date(at.now).toISOString(),
    counts: {
      total: 0,
      pending: 0,
      running: 0,
      done: 0,
      failed: 0,
      reused: 0,
      retried: 0,
      speculative: 0,
      elapsedMs: at.now - at.startedAt,
    },
    ...(error ? { error: error.message } : {}),
    tasks: [],
    links: linksOf(facts, layout),
  };
}

/** Write the JSON and HTML pages and the summary of a job. */
export async function writeStatus(
  storage: Storage,
  layout: JobLayout,
  status: JobStatus,
): Promise<void> {
  await Promise.all([
    writeJson(storage, layout.statusJson, status),
    storage.put(layout.statusHtml, new TextEncoder().encode(renderStatusHtml(status)), {
      contentType: "text/html; charset=utf-8",
    }),
    writeJson(storage, layout.summary, summaryOf(status)),
  ]);
}
