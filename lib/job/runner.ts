/**
 * The job loop on the master: submits tasks to a backend session, turns
 * backend events and stored results into task states, retries crashed
 * attempts with backoff, stops attempts that run past the time limit,
 * starts speculative copies of stragglers, and keeps the status pages
 * current. It only ever talks to the Storage and BackendSession seams.
 *
 * @module
 */

import type { BackendEvent, BackendSession } from "../backends/backend.ts";
import { JobInterruptedError, TaskError, WorkerCrashError } from "../errors.ts";
import { readHeader } from "../serialize.ts";
import type { Storage } from "../storage/storage.ts";
import type { ResolvedJobOptions } from "../options.ts";
import { HEARTBEAT_MS } from "../status/status.ts";
import { type JobLayout, newAttemptId } from "./layout.ts";
import type { Manifest, ResultHeader } from "./manifest.ts";
import {
  type AttemptState,
  type JobPhase,
  type Progress,
  progressOf,
  type TaskState,
} from "./state.ts";

/** How often timeouts and stragglers are checked, in milliseconds. */
const TICK_MS = 250;
/** No attempt younger than this gets a speculative copy: copies pay only for long tasks. */
const SPECULATION_FLOOR_MS = 1000;
/** Most often `onProgress` is called, in milliseconds. */
const PROGRESS_MS = 100;
/** Longest delay between retries of one task. */
const MAX_RETRY_DELAY_MS = 60_000;

/** What the runner needs. */
export interface RunnerContext {
  storage: Storage;
  layout: JobLayout;
  manifest: Manifest;
  options: ResolvedJobOptions;
  /** Writes status pages; called at a bounded rate and at the end. */
  writeStatus: (runner: JobRunner, final: boolean) => Promise<void>;
}

/** Drives one job to its end. */
export class JobRunner {
  readonly tasks: TaskState[];
  readonly startedAt: number = Date.now();
  phase: JobPhase = "running";
  /** Set when the job failed or was stopped. */
  error: Error | undefined;
  /** Set when waiting callers must stop at once: fail fast, a stop, or a bug. */
  #fatal: Error | undefined;
  readonly #settling = new Set<Promise<void>>();

  readonly #ctx: RunnerContext;
  #session: BackendSession | undefined;
  readonly #attempts = new Map<string, AttemptState>();
  #wake: () => void = () => {};
  #changed: Promise<void>;
  #timers = new Set<ReturnType<typeof setTimeout>>();
  #tick: ReturnType<typeof setInterval> | undefined;
  #statusTimer: ReturnType<typeof setInterval> | undefined;
  #statusDirty = true;
  #statusWriting: Promise<void> = Promise.resolve();
  #lastStatusWrite = 0;
  readonly #runtimes: number[] = [];
  #lastProgress = 0;
  /** Tasks done or failed for good. */
  #settledTasks = 0;
  #progressTimer: ReturnType<typeof setTimeout> | undefined;

  /** Create a runner for a prepared job. */
  constructor(ctx: RunnerContext) {
    this.#ctx = ctx;
    this.tasks = Array.from({ length: ctx.manifest.tasks }, (_, index) => ({
      index,
      phase: "pending",
      attempts: [],
      reused: false,
      crashes: 0,
    }));
    this.#changed = new Promise((resolve) => (this.#wake = resolve));
  }

  /** Attempts the master knows of, by id. */
  get attempts(): ReadonlyMap<string, AttemptState> {
    return this.#attempts;
  }

  /** Current counts. */
  progress(): Progress {
    return progressOf(this.#ctx.layout.key, this.phase, this.tasks, this.startedAt);
  }

  /**
   * Mark tasks with a stored successful result as done (reused). Runs once,
   * before the backend session opens.
   */
  async loadStoredResults(): Promise<void> {
    const { storage, layout } = this.#ctx;
    for await (const info of storage.list(layout.resultsPrefix)) {
      const parsed = layout.parseResult(info.key);
      const task = parsed && this.tasks[parsed.task];
      if (!task || parsed.kind !== "ok" || task.phase === "done") continue;
      task.phase = "done";
      this.#settledTasks++;
      task.reused = true;
      task.winner = parsed.attempt;
      task.resultBytes = info.size;
    }
    this.#notify();
  }

  /** Handle a backend event. Safe to call before `start`. */
  readonly onEvent = (event: BackendEvent): void => {
    let attempt = this.#attempts.get(event.attempt);
    const task = this.tasks[event.task];
    if (!task) return;
    if (!attempt) {
      // An attempt the master did not start: left running by an earlier master.
      attempt = {
        id: event.attempt,
        task: event.task,
        submittedAt: event.at.getTime(),
        speculative: false,
      };
      this.#attempts.set(attempt.id, attempt);
      task.attempts.push(attempt);
      if (task.phase === "pending") task.phase = "running";
    }
    if (event.type === "started") {
      attempt.startedAt = event.at.getTime();
      attempt.host = event.host;
      if (task.phase === "pending") task.phase = "running";
    } else if (event.type === "waiting") {
      attempt.detail = event.detail;
    } else {
      attempt.endedAt = event.at.getTime();
      attempt.detail = event.detail;
      const settling: Promise<void> = this.#settle(task, attempt, event)
        .catch((error) => this.#abort(error))
        .finally(() => this.#settling.delete(settling));
      this.#settling.add(settling);
    }
    this.#notify();
  };

  /** Submit every task that is not done yet and start the timers. */
  async start(session: BackendSession): Promise<void> {
    this.#session = session;
    const pending = this.tasks.filter((t) => t.phase === "pending");
    const batch = pending.map((task) => this.#newAttempt(task, false));
    if (batch.length > 0) {
      await session.submit(batch.map(({ task, id }) => ({
        task,
        attempt: id,
        first: this.tasks[task]!.attempts.length === 1,
      })));
    }
    this.#tick = setInterval(() => this.#onTick(), TICK_MS);
    this.#statusTimer = setInterval(() => this.#maybeWriteStatus(false), 250);
    this.#checkFinished();
  }

  /** Wait until `task` is done or failed. Rejects at once when the job failed (fail fast) or was stopped. */
  async settled(task: number): Promise<TaskState> {
    for (;;) {
      const state = this.tasks[task]!;
      if (this.#fatal) throw this.#fatal;
      if (state.phase === "done" || state.phase === "failed") return state;
      await this.#changed;
    }
  }

  /** Wait until every task is done or failed. */
  async finished(): Promise<void> {
    while (this.phase === "running") await this.#changed;
    if (this.#fatal) throw this.#fatal;
  }

  /**
   * Stop the job: no new attempts, running ones stopped (or, with
   * `stopRunning: false`, left to the backend), status marked interrupted.
   */
  async stop(reason: Error, stopRunning = true): Promise<void> {
    if (this.phase === "running") {
      this.phase = "interrupted";
      this.error = this.#fatal = reason;
    }
    await this.#shutdown(stopRunning);
  }

  /** Stop timers, close the session and write the final status. */
  async close(): Promise<void> {
    await this.#shutdown(true);
  }

  #newAttempt(task: TaskState, speculative: boolean): AttemptState {
    const attempt: AttemptState = {
      id: newAttemptId(),
      task: task.index,
      submittedAt: Date.now(),
      speculative,
    };
    this.#attempts.set(attempt.id, attempt);
    task.attempts.push(attempt);
    return attempt;
  }

  async #submit(task: TaskState, speculative: boolean): Promise<void> {
    if (this.phase !== "running" || !this.#session) return;
    const attempt = this.#newAttempt(task, speculative);
    this.#notify();
    await this.#session.submit([{ task: task.index, attempt: attempt.id }]);
  }

  /** Decide what an ended attempt means for its task. */
  async #settle(task: TaskState, attempt: AttemptState, event: BackendEvent & { type: "exited" }) {
    const { storage, layout, options } = this.#ctx;
    const results = new Map<string, { kind: "ok" | "error"; size: number }>();
    if (event.stored?.kind === "ok") {
      // The backend says what was stored: no need to list the task's results.
      results.set(`${attempt.id}.ok`, event.stored);
    } else {
      for await (const info of storage.list(layout.taskResults(task.index))) {
        const parsed = layout.parseResult(info.key);
        if (parsed) {
          results.set(`${parsed.attempt}.${parsed.kind}`, { kind: parsed.kind, size: info.size });
        }
      }
    }
    const own = results.get(`${attempt.id}.ok`) ?? results.get(`${attempt.id}.error`);
    const winner = own?.kind === "ok"
      ? attempt.id
      : [...results.entries()].find(([, r]) => r.kind === "ok")?.[0].replace(/\.ok$/, "");
    attempt.outcome = own?.kind === "ok"
      ? "ok"
      : own?.kind === "error"
      ? "task-error"
      : attempt.timedOut || event.reason === "timeout"
      ? "timeout"
      : event.reason === "cancelled" || (winner && event.exitCode === 0)
      ? "cancelled" // stopped, or stood down because another attempt had won
      : "crash";
    if (attempt.outcome === "ok" && attempt.startedAt !== undefined) {
      this.#runtimes.push((attempt.endedAt ?? Date.now()) - attempt.startedAt);
    }
    if (task.phase === "done" || task.phase === "failed") return this.#notify();

    if (winner) {
      task.phase = "done";
      this.#settledTasks++;
      task.winner = winner;
      task.resultBytes = results.get(`${winner}.ok`)?.size;
      const losers = task.attempts.filter((a) => a.endedAt === undefined && a.id !== winner);
      if (losers.length > 0) await this.#session?.cancel(losers.map((a) => a.id));
      return this.#finishStep();
    }
    const stillRunning = task.attempts.some((a) => a.endedAt === undefined);
    if (attempt.outcome === "cancelled" || this.phase !== "running") {
      if (!stillRunning) task.phase = "pending"; // stopped, to be run again by a later master
      return this.#notify();
    }

    if (attempt.outcome === "task-error") {
      const header = await readHeader<ResultHeader>(
        await storage.get(layout.result(task.index, attempt.id, "error")),
        `error of task ${task.index}`,
      );
      const error = header.error!;
      const taskError = new TaskError({
        task: task.index,
        input: task.index * this.#ctx.manifest.itemsPerTask + (error.item ?? 0),
        attempt: attempt.id,
        name: error.name,
        message: error.message,
        stack: error.stack,
        host: header.host,
      });
      if (options.retryTaskErrors && this.#failedAttempts(task) <= options.maxRetries) {
        return this.#retryLater(task);
      }
      if (stillRunning) return this.#notify();
      return this.#fail(task, taskError);
    }

    // A backend that restarts crashed attempts itself (Kubernetes) says how often it did.
    task.crashes += event.crashes ?? 1;
    const unstartable = event.reason === "unstartable";
    if (stillRunning && !unstartable) return this.#notify();
    if (task.crashes <= options.maxRetries && !unstartable) return this.#retryLater(task);
    this.#fail(
      task,
      new WorkerCrashError({
        task: task.index,
        input: task.index * this.#ctx.manifest.itemsPerTask,
        attempt: attempt.id,
        kind: attempt.outcome === "timeout" ? "timeout" : unstartable ? "infrastructure" : "crash",
        attempts: task.crashes,
        // Without a time limit of the job's, the backend's own deadline ended it: say which.
        detail: attempt.outcome === "timeout" && options.timeoutMs
          ? `it ran longer than the time limit of ${options.timeoutMs} ms`
          : event.detail,
      }),
    );
  }

  #failedAttempts(task: TaskState): number {
    return task.attempts.filter((a) => a.outcome && a.outcome !== "ok" && a.outcome !== "cancelled")
      .length;
  }

  #retryLater(task: TaskState): void {
    const { retryDelayMs } = this.#ctx.options;
    const n = this.#failedAttempts(task);
    const delay = Math.min(MAX_RETRY_DELAY_MS, retryDelayMs * 2 ** (n - 1)) *
      (0.5 + Math.random() / 2);
    task.phase = "pending";
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      void this.#submit(task, false).catch((error) => this.#abort(error));
    }, delay);
    this.#timers.add(timer);
    this.#notify();
  }

  #fail(task: TaskState, error: Error): void {
    task.phase = "failed";
    this.#settledTasks++;
    task.error = error;
    if (this.#ctx.options.failFast) {
      this.phase = "failed";
      this.error = this.#fatal = error;
      void this.#shutdown(true);
    }
    this.#finishStep();
  }

  #abort(error: unknown): void {
    if (this.phase !== "running") return;
    this.phase = "failed";
    this.error = this.#fatal = error instanceof Error ? error : new Error(String(error));
    void this.#shutdown(true);
    this.#notify();
  }

  #finishStep(): void {
    this.#checkFinished();
    this.#notify();
  }

  #checkFinished(): void {
    if (this.phase !== "running") return;
    if (this.#settledTasks < this.tasks.length) return;
    const failed = this.tasks.find((t) => t.phase === "failed");
    this.phase = failed ? "failed" : "done";
    this.error = failed?.error;
    void this.#shutdown(true);
  }

  #onTick(): void {
    if (this.phase !== "running" || !this.#session) return;
    const now = Date.now();
    const { timeoutMs } = this.#ctx.options;
    const running = [...this.#attempts.values()].filter((a) =>
      a.startedAt !== undefined && a.endedAt === undefined
    );
    if (timeoutMs > 0 && !this.#session.enforcesTimeouts) {
      const late = running.filter((a) => !a.timedOut && now - a.startedAt! > timeoutMs);
      for (const a of late) a.timedOut = true;
      if (late.length > 0) {
        void this.#session.cancel(late.map((a) => a.id)).catch((error) => this.#abort(error));
      }
    }
    this.#speculate(now, running);
  }

  /** Start copies of stragglers, as the original kubeface did. */
  #speculate(now: number, running: AttemptState[]): void {
    const o = this.#ctx.options;
    if (o.speculationPercent <= 0 || o.speculationMaxReruns <= 0 || this.#runtimes.length === 0) {
      return;
    }
    // The tail of the job: at most that share of the tasks is still unfinished.
    const unfinished = this.tasks.length - this.#settledTasks;
    if (unfinished > (o.speculationPercent / 100) * this.tasks.length) return;
    const runningTasks = new Set(running.map((a) => a.task));
    const sorted = [...this.#runtimes].sort((a, b) => a - b);
    const rank = Math.ceil((o.speculationRuntimePercentile / 100) * sorted.length) - 1;
    const threshold = sorted[Math.min(sorted.length - 1, Math.max(0, rank))]!;
    let slots = o.parallelism - [...this.#attempts.values()].filter((a) => a.endedAt === undefined)
      .length;
    for (const taskIndex of runningTasks) {
      if (slots <= 0) break;
      const task = this.tasks[taskIndex]!;
      const live = task.attempts.filter((a) => a.endedAt === undefined);
      const copies = task.attempts.filter((a) => a.speculative).length;
      const oldest = Math.min(...live.map((a) => a.startedAt ?? now));
      if (task.phase !== "running" || copies >= o.speculationMaxReruns || live.length !== 1) {
        continue;
      }
      if (now - oldest <= Math.max(threshold, SPECULATION_FLOOR_MS)) continue;
      slots--;
      void this.#submit(task, true).catch((error) => this.#abort(error));
    }
  }

  #notify(): void {
    this.#statusDirty = true;
    const wake = this.#wake;
    this.#changed = new Promise((resolve) => (this.#wake = resolve));
    wake();
    this.#reportProgress(false);
  }

  /**
   * Tell `onProgress` at most every {@linkcode PROGRESS_MS} (counting walks
   * every task, so not once per event of a 10,000-task job), and at the end.
   */
  #reportProgress(final: boolean): void {
    const onProgress = this.#ctx.options.onProgress;
    if (!onProgress) return;
    const now = Date.now();
    if (final || now - this.#lastProgress >= PROGRESS_MS) {
      clearTimeout(this.#progressTimer);
      this.#progressTimer = undefined;
      this.#lastProgress = now;
      onProgress(this.progress());
    } else {
      this.#progressTimer ??= setTimeout(() => {
        this.#progressTimer = undefined;
        this.#reportProgress(false);
      }, PROGRESS_MS - (now - this.#lastProgress));
    }
  }

  #maybeWriteStatus(final: boolean): Promise<void> {
    const now = Date.now();
    const since = now - this.#lastStatusWrite;
    const due = (this.#statusDirty && since >= this.#ctx.options.statusIntervalMs) ||
      since >= HEARTBEAT_MS;
    if (!final && !due) return this.#statusWriting;
    this.#statusDirty = false;
    this.#lastStatusWrite = now;
    this.#statusWriting = this.#statusWriting
      .then(() => this.#ctx.writeStatus(this, final))
      .catch(() => {
        this.#statusDirty = true; // try again on the next tick
      });
    return this.#statusWriting;
  }

  #shuttingDown: Promise<void> | undefined;

  #shutdown(stopRunning: boolean): Promise<void> {
    this.#shuttingDown ??= (async () => {
      clearInterval(this.#tick);
      clearInterval(this.#statusTimer);
      for (const timer of this.#timers) clearTimeout(timer);
      if (this.phase === "running") {
        this.phase = "interrupted";
        this.error = this.#fatal = new JobInterruptedError(this.#ctx.layout.key);
      }
      await this.#session?.close({ stopRunning });
      while (this.#settling.size > 0) await Promise.all(this.#settling);
      await this.#maybeWriteStatus(true);
      this.#notify();
      this.#reportProgress(true);
    })();
    return this.#shuttingDown;
  }
}
