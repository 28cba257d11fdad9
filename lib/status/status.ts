/**
 * Status pages: the JSON page of a job (`jobs/<key>/status.json`), its HTML
 * rendering, and the small summary `kubeface jobs` lists
 * (`index/<key>.json`).
 *
 * @module
 */

import type { JobRunner } from "../master/runner.ts";
import type { JobLayout } from "../format/layout.ts";
import type { AttemptOutcome, JobPhase, Progress } from "../master/state.ts";
import { type Storage, writeJson } from "../storage/storage.ts";
import { renderStatusHtml } from "./html.ts";

/** A master rewrites the status of a running job at least this often. */
export const HEARTBEAT_MS = 60_000;

/** Facts about a job that do not change while it runs. */
export interface JobFacts {
  job: string;
  backend: string;
  storage: string;
  module: string;
  parallelism: number;
  itemsPerTask: number;
  inputs: number;
}

/** One attempt on the status page. Times are ISO 8601. */
export interface AttemptStatus {
  id: string;
  host?: string;
  submittedAt: string;
  startedAt?: string;
  endedAt?: string;
  outcome?: AttemptOutcome;
  speculative: boolean;
  detail?: string;
}

/** One task on the status page. */
export interface TaskStatus {
  task: number;
  phase: "pending" | "running" | "done" | "failed";
  reused: boolean;
  winner?: string;
  resultBytes?: number;
  error?: string;
  attempts: AttemptStatus[];
}

/** Contents of `jobs/<key>/status.json`. */
export interface JobStatus extends JobFacts {
  format: 1;
  phase: JobPhase;
  startedAt: string;
  updatedAt: string;
  counts: Omit<Progress, "job" | "phase">;
  /** The error that ended the job, if any. */
  error?: string;
  tasks: TaskStatus[];
  /** Storage URLs of the status pages and the job's objects. */
  links: { json: string; html: string; prefix: string };
}

/** Contents of `index/<key>.json`. */
export interface JobSummary {
  job: string;
  phase: JobPhase;
  backend: string;
  storage: string;
  module: string;
  total: number;
  done: number;
  failed: number;
  startedAt: string;
  updatedAt: string;
}

const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

/** Build the status of a running (or finished) job. */
export function buildStatus(runner: JobRunner, facts: JobFacts, layout: JobLayout): JobStatus {
  const { job: _job, phase, ...counts } = runner.progress();
  return {
    format: 1,
    ...facts,
    phase,
    startedAt: new Date(runner.startedAt).toISOString(),
    updatedAt: new Date().toISOString(),
    counts,
    ...(runner.error ? { error: runner.error.message } : {}),
    tasks: runner.tasks.map((t) => ({
      task: t.index,
      phase: t.phase,
      reused: t.reused,
      ...(t.winner ? { winner: t.winner } : {}),
      ...(t.resultBytes !== undefined ? { resultBytes: t.resultBytes } : {}),
      ...(t.error ? { error: t.error.message } : {}),
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
    links: {
      json: facts.storage + layout.statusJson,
      html: facts.storage + layout.statusHtml,
      prefix: facts.storage + layout.prefix,
    },
  };
}

/** The summary of a status. */
export function summaryOf(status: JobStatus): JobSummary {
  return {
    job: status.job,
    phase: status.phase,
    backend: status.backend,
    storage: status.storage,
    module: status.module,
    total: status.counts.total,
    done: status.counts.done,
    failed: status.counts.failed,
    startedAt: status.startedAt,
    updatedAt: status.updatedAt,
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
