/**
 * The status of a job as it is stored: the status page's data
 * (`jobs/<key>/status.json`) and the summary `kubeface jobs` lists
 * (`index/<key>.json`), with the phases and counts they hold.
 *
 * @module
 */

/** A master rewrites the status of a running job at least this often. */
export const HEARTBEAT_MS = 60_000;

/** How an attempt ended. */
export type AttemptOutcome =
  | "ok"
  | "task-error"
  | "crash"
  | "timeout"
  | "cancelled"
  /** Stopped from outside (a preemption, a drain, a container stop): not a failure. */
  | "disrupted";

/** Overall state of a job. */
export type JobPhase = "preparing" | "running" | "done" | "failed" | "interrupted";

/** Counts of tasks by state, for progress lines and status pages. */
export interface Progress {
  /** Job key. */
  job: string;
  /** Where the job is. */
  phase: JobPhase;
  /** Number of tasks. */
  total: number;
  /** Tasks waiting to run (or to run again). */
  pending: number;
  /** Tasks with an attempt running. */
  running: number;
  /** Tasks with a result. */
  done: number;
  /** Tasks that failed for good. */
  failed: number;
  /** Done tasks whose result came from an earlier run. */
  reused: number;
  /** Attempts started again after a crash, timeout or error. */
  retried: number;
  /** Speculative attempts started. */
  speculative: number;
  /** Milliseconds since the job started. */
  elapsedMs: number;
  /** Estimated milliseconds until every task is done, when it can be told. */
  etaMs?: number;
  /** Inputs uploaded so far, while the job is being prepared. */
  uploaded?: number;
}

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
  /** When the task's last checkpoint was written (ISO 8601), while it has one. */
  checkpointAt?: string;
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
