/**
 * The Backend seam: where attempts of tasks run. A backend starts worker
 * processes (local processes, containers, Kubernetes pods) that each run
 * `worker.ts` for one attempt, and reports what happened to them. All data
 * goes through storage; a backend never sees inputs or results.
 *
 * Implementations are picked by name in {@linkcode createBackend} and
 * nowhere else.
 *
 * @module
 */

import type { AttemptSpec } from "../format/attempt.ts";
import type { JobLayout } from "../format/layout.ts";
import type { PermissionSet } from "../permissions.ts";
import type { Storage } from "../storage/storage.ts";

export type { AttemptSpec };

/** What every backend is told about the job it runs, resolved once by the master. */
export interface JobContext {
  /** Job key. */
  key: string;
  /**
   * The job's storage, opened by the master; workers reach it at
   * `storage.url`. The master closes it after the session.
   */
  storage: Storage;
  /** Keys of the job's objects. */
  layout: JobLayout;
  /** What the task may do: the Deno permissions the user granted, parsed. */
  permissions: PermissionSet;
  /** Most attempts running at once. */
  parallelism: number;
  /** Environment variables set for every worker. */
  env: Readonly<Record<string, string>>;
  /** Per-attempt time limit in milliseconds; the backend may enforce it too. */
  timeoutMs: number | undefined;
  /**
   * Time a stopped attempt's task gets to checkpoint and return after its
   * signal fires, in milliseconds. Workers are started with it; a backend
   * that stops a worker sends SIGTERM (or a stop message) first and kills
   * it only once this, plus {@linkcode WORKER_EXIT_MS}, has passed.
   *
   * @default {DEFAULTS.graceMs (25000)}
   */
  graceMs?: number;
  /** Number of tasks in the job. */
  tasks: number;
  /** How often a crashed attempt may be restarted, for backends that restart them themselves. */
  maxRetries: number;
}

/**
 * Time a worker gets, after its task's grace period, to store what the task
 * left (a result, a checkpoint) and exit, in milliseconds.
 */
export const WORKER_EXIT_MS = 5000;

/** Why an attempt ended, as far as the backend can tell. */
export type ExitReason =
  /** The worker process exited on its own; see `exitCode`. */
  | "exited"
  /** Killed by a signal the backend did not send, or by the OOM killer. */
  | "killed"
  /**
   * Stopped from outside the job without a result, and not by a fault of its
   * own: SIGTERM from a preemption, a drain, a node shutdown or a container
   * stop. Not counted against `maxRetries`.
   */
  | "disrupted"
  /** Ran out of memory. */
  | "oom"
  /** The backend stopped it because `cancel` was called. */
  | "cancelled"
  /** The backend lost track of it (node gone, pod deleted). */
  | "lost"
  /** The backend stopped it for running past the time limit. */
  | "timeout"
  /** It could never start (unschedulable, image missing, spawn failed). */
  | "unstartable";

/** Something that happened to an attempt. */
export type BackendEvent =
  | {
    type: "started";
    task: number;
    attempt: string;
    /** When the worker started. */
    at: Date;
    /** Where it runs (host name, pod name). */
    host?: string;
  }
  | {
    type: "exited";
    task: number;
    attempt: string;
    at: Date;
    reason: ExitReason;
    /** Process exit code, when there was one. */
    exitCode: number | undefined;
    /** A plain sentence for the user: signal, stderr tail, scheduler message. */
    detail: string;
    /**
     * How many times the attempt crashed, for a backend that restarts
     * crashed attempts itself (Kubernetes' `backoffLimitPerIndex`).
     *
     * @default {1 when it did not succeed}
     */
    crashes?: number;
  }
  | {
    /** A condition worth showing while the attempt waits, e.g. "unschedulable: Insufficient memory". */
    type: "waiting";
    task: number;
    attempt: string;
    at: Date;
    detail: string;
  };

/** A running job on a backend. */
export interface BackendSession extends AsyncDisposable {
  /**
   * The backend stops attempts that run past `JobContext.timeoutMs` itself
   * (and reports them with reason `timeout`), so the job loop does not.
   */
  readonly enforcesTimeouts?: boolean;
  /** Queue attempts to run; resolves when the backend has accepted them. */
  submit(attempts: readonly AttemptSpec[]): Promise<void>;
  /** Stop attempts (queued or running); each later gets an `exited` event with reason `cancelled`. */
  cancel(attempts: readonly string[]): Promise<void>;
  /**
   * Stop using the backend. With `stopRunning`, running attempts are
   * stopped first; without, they are left to finish on their own where the
   * backend allows it (Kubernetes).
   */
  close(options?: { stopRunning?: boolean }): Promise<void>;
}

/** A place to run attempts. */
export interface Backend {
  /** Name used on the command line, e.g. `"local"`. */
  readonly name: string;
  /**
   * What keeps running when the master stops, named for the user (e.g.
   * `"Kubernetes Jobs"`), for a backend whose attempts outlive the master:
   * stopping them is then the user's choice, and a later master with the
   * same job key attaches to them. `cleanup` removes them.
   *
   * @default {undefined: attempts stop with the master}
   */
  readonly keepsRunning?: string;
  /**
   * Refuse a storage this backend's workers cannot reach, before anything
   * of a job is made. Optional: every storage is fine when it is missing.
   *
   * @throws {BackendError} The workers cannot reach the storage at `url`.
   */
  checkStorage?(url: string): void;
  /**
   * Start a session for one job. Attempts that are already running from an
   * earlier master (a cluster keeps them) are reported as `started` events.
   */
  open(job: JobContext, onEvent: (event: BackendEvent) => void): Promise<BackendSession>;
  /**
   * Remove whatever the backend keeps for a job (Kubernetes Jobs and pods),
   * stopping what still runs. Returns a line per removed thing.
   */
  cleanup(jobKey: string): Promise<string[]>;
  /**
   * Output of a job's workers that the backend keeps itself (pod logs), for
   * backends whose workers do not store their logs. Optional. Throws a
   * {@linkcode BackendError} saying why when what kept them is gone (the
   * job's pods were deleted).
   */
  logs?(storage: Storage, jobKey: string, task?: number): AsyncIterable<WorkerLog>;
}

/** The output of one attempt. */
export interface WorkerLog {
  /** Task index. */
  task: number;
  /** Attempt id (and where it ran). */
  attempt: string;
  /** What the worker printed. */
  text: string;
}

/** Names accepted by {@linkcode createBackend}. */
export const BACKEND_NAMES = ["local", "container", "kubernetes"] as const;

/** A backend name. */
export type BackendName = typeof BACKEND_NAMES[number];
