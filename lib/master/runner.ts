/**
 * The job loop on the master: submits tasks to a backend session, turns
 * backend events and stored results into task states, retries crashed
 * attempts with backoff, stops attempts that run past the time limit,
 * starts speculative copies of stragglers, and keeps the status pages
 * current. It only ever talks to the Storage and BackendSession seams.
 *
 * @module
 */

import type { AttemptSpec, BackendEvent, BackendSession } from "../backends/backend.ts";
import { errorMessage, JobInterruptedError, TaskError, WorkerCrashError } from "../errors.ts";
import { type JobLayout, newAttemptId } from "../format/layout.ts";
import type { Manifest, ResultHeader } from "../format/manifest.ts";
import { readHeader } from "../format/records.ts";
import { HEARTBEAT_MS } from "../format/status.ts";
import type { ResolvedJobOptions } from "../options.ts";
import type { JobSnapshot } from "../status/status.ts";
import type { Storage } from "../storage/storage.ts";
import { type Clock, systemClock, type TimerId } from "./clock.ts";
import { CHECKPOINT_LIST_MS, refreshCheckpoints } from "./checkpoints.ts";
import {
  attemptOutcome,
  failedAttempts,
  lateAttempts,
  nextStep,
  retryDelayMs,
  stragglers,
} from "./policies.ts";
import {
  type AttemptState,
  type JobPhase,
  type Progress,
  progressOf,
  type TaskState,
} from "./state.ts";

/** How often timeouts and stragglers are checked, in milliseconds. */
const TICK_MS = 250;
/** Most often `onProgress` is called, in milliseconds. */
const PROGRESS_MS = 100;
/**
 * The status pages are rewritten at most every this many times as long as their last write took:
 * a 100,000-task job's pages are 67 MiB, and rewriting them every 5 s would keep the master busy.
 */
const STATUS_WRITE_SPACING = 10;

/** What the runner needs. */
export interface RunnerContext {
  storage: Storage;
  layout: JobLayout;
  manifest: Manifest;
  options: ResolvedJobOptions;
  /** Writes status pages; called at a bounded rate and at the end. */
  writeStatus: (runner: JobRunner, final: boolean) => Promise<void>;
  /** @default {systemClock} */
  clock?: Clock;
  /** Random numbers from 0 to 1, for the jitter of retries. @default {Math.random} */
  random?: () => number;
}

/** Drives one job to its end. */
export class JobRunner {
  readonly tasks: TaskState[];
  /** Indexes of the tasks that are done or failed, in the order they became so. */
  readonly finishOrder: number[] = [];
  readonly startedAt: number;
  phase: JobPhase = "running";
  /** Set when the job failed or was stopped. */
  error: Error | undefined;
  /** Set when waiting callers must stop at once: fail fast, a stop, or a bug. */
  #fatal: Error | undefined;
  readonly #settling = new Set<Promise<void>>();

  readonly #ctx: RunnerContext;
  readonly #clock: Clock;
  readonly #random: () => number;
  #session: BackendSession | undefined;
  readonly #attempts = new Map<string, AttemptState>();
  #wake: () => void = () => {};
  #changed: Promise<void>;
  #timers = new Set<TimerId>();
  #tick: TimerId;
  #statusTimer: TimerId;
  #statusDirty = true;
  #statusWriting: Promise<void> = Promise.resolve();
  #lastStatusWrite = 0;
  /** How long the last status write took. */
  #statusWriteMs = 0;
  /** Status writes scheduled and not yet ended. */
  #statusWritesQueued = 0;
  readonly #runtimes: number[] = [];
  #lastProgress = 0;
  /** Tasks done or failed for good. */
  #settledTasks = 0;
  #progressTimer: TimerId;
  #checkpointsListedAt = -Infinity;
  /** Attempts waiting for the submission under way to end: they go together in the next one. */
  #queued: { attempts: AttemptSpec[]; sent: Promise<void> } | undefined;
  /** The last submission to the session (the one under way, if any). */
  #sending: Promise<void> = Promise.resolve();

  /** Create a runner for a prepared job. */
  constructor(ctx: RunnerContext) {
    this.#ctx = ctx;
    this.#clock = ctx.clock ?? systemClock;
    this.#random = ctx.random ?? Math.random;
    this.startedAt = this.#clock.now();
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
    return progressOf(
      this.#ctx.layout.key,
      this.phase,
      this.tasks,
      this.startedAt,
      this.#clock.now(),
    );
  }

  /** The job as it is now, for its status page. */
  snapshot(): JobSnapshot {
    return {
      progress: this.progress(),
      startedAt: this.startedAt,
      now: this.#clock.now(),
      error: this.error,
      tasks: this.tasks,
    };
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
      this.finishOrder.push(task.index);
      task.reused = true;
      task.winner = parsed.attempt;
      task.resultBytes = info.size;
    }
    await this.#listCheckpoints(true);
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
      this.#sending = session.submit(batch.map(({ task, id }) => ({ task, attempt: id })));
      await this.#sending;
    }
    this.#tick = this.#clock.setInterval(() => this.#onTick(), TICK_MS);
    this.#statusTimer = this.#clock.setInterval(() => this.#maybeWriteStatus(false), 250);
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

  /**
   * Wait for the `n`-th task (from 0) to be done or failed, in the order
   * tasks settle; `undefined` when every task settled and there is no such
   * one. Rejects at once when the job failed (fail fast) or was stopped.
   */
  async settledNth(n: number): Promise<TaskState | undefined> {
    for (;;) {
      if (this.#fatal) throw this.#fatal;
      const index = this.finishOrder[n];
      if (index !== undefined) return this.tasks[index];
      if (this.finishOrder.length >= this.tasks.length) return undefined;
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
      submittedAt: this.#clock.now(),
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
    await this.#send({ task: task.index, attempt: attempt.id });
  }

  /**
   * Hand an attempt to the session. Attempts handed over in the same turn, or while a submission
   * is under way (a Kubernetes Job being created), go together in the next submission: retries
   * after a node is lost share Jobs instead of making one each.
   */
  #send(attempt: AttemptSpec): Promise<void> {
    if (this.#queued) {
      this.#queued.attempts.push(attempt);
      return this.#queued.sent;
    }
    const attempts = [attempt];
    const sent = this.#sending.catch(() => {}).then(() => {
      this.#queued = undefined;
      // Stopped meanwhile: a later master runs these tasks; a Job made now would outlive the session.
      if (this.#shuttingDown) return;
      return this.#session!.submit(attempts);
    });
    this.#queued = { attempts, sent };
    this.#sending = sent;
    return sent;
  }

  /** What the task's results say about an ended attempt: its own record, and the winner. */
  async #results(task: TaskState, attempt: AttemptState, exitCode: number | undefined) {
    const { storage, layout } = this.#ctx;
    if (exitCode === 0) {
      // Most often the attempt stored its value: one look instead of a listing.
      const own = await storage.stat(layout.result(task.index, attempt.id, "ok"));
      if (own) return { stored: "ok" as const, winner: attempt.id, size: own.size };
    }
    let stored: "ok" | "error" | undefined;
    let winner: { id: string; size: number } | undefined;
    for await (const info of storage.list(layout.taskResults(task.index))) {
      const parsed = layout.parseResult(info.key);
      if (!parsed) continue;
      if (parsed.attempt === attempt.id && stored !== "ok") stored = parsed.kind;
      if (parsed.kind === "ok" && (!winner || parsed.attempt === attempt.id)) {
        winner = { id: parsed.attempt, size: info.size };
      }
    }
    return { stored, winner: winner?.id, size: winner?.size };
  }

  /** Decide what an ended attempt means for its task. */
  async #settle(task: TaskState, attempt: AttemptState, event: BackendEvent & { type: "exited" }) {
    const { storage, layout, options } = this.#ctx;
    const { stored, winner, size } = await this.#results(task, attempt, event.exitCode);
    attempt.outcome = attemptOutcome({
      stored,
      won: winner !== undefined,
      timedOut: attempt.timedOut === true,
      reason: event.reason,
      exitCode: event.exitCode,
    });
    if (attempt.outcome === "ok" && attempt.startedAt !== undefined) {
      this.#runtimes.push((attempt.endedAt ?? this.#clock.now()) - attempt.startedAt);
    }
    if (task.phase === "done" || task.phase === "failed") return this.#notify();
    if (attempt.outcome === "crash" || attempt.outcome === "timeout") {
      // A backend that restarts crashed attempts itself (Kubernetes) says how often it did.
      task.crashes += event.crashes ?? 1;
    }
    const next = nextStep({
      task,
      outcome: attempt.outcome,
      winner,
      reason: event.reason,
      running: this.phase === "running",
      options,
    });
    switch (next.action) {
      case "done": {
        task.phase = "done";
        this.#settledTasks++;
        this.finishOrder.push(task.index);
        task.winner = next.winner;
        task.resultBytes = size;
        const losers = task.attempts.filter((a) => a.endedAt === undefined && a.id !== winner);
        // Not awaited: a stopped loser gets the grace period, the result need not wait for it.
        if (losers.length > 0) {
          this.#session?.cancel(losers.map((a) => a.id)).catch((error) => this.#abort(error));
        }
        return this.#finishStep();
      }
      case "wait":
        return this.#notify();
      case "requeue":
        task.phase = "pending"; // stopped, to be run again by a later master
        return this.#notify();
      case "retry":
        return this.#retryLater(task);
      case "fail": {
        const input = task.index * this.#ctx.manifest.itemsPerTask;
        if (next.kind === "task") {
          const header = await readHeader<ResultHeader>(
            await storage.get(layout.result(task.index, attempt.id, "error")),
            `error of task ${task.index}`,
          );
          const error = header.error!;
          return this.#fail(
            task,
            new TaskError({
              task: task.index,
              input: input + (error.item ?? 0),
              attempt: attempt.id,
              name: error.name,
              message: error.message,
              stack: error.stack,
              host: header.host,
            }),
          );
        }
        return this.#fail(
          task,
          new WorkerCrashError({
            task: task.index,
            input,
            attempt: attempt.id,
            kind: next.kind,
            attempts: task.crashes,
            // Without a time limit of the job's, the backend's own deadline ended it: say which.
            detail: next.kind === "timeout" && options.timeoutMs
              ? `it ran longer than the time limit of ${options.timeoutMs} ms`
              : event.detail,
          }),
        );
      }
    }
  }

  #retryLater(task: TaskState): void {
    const delay = retryDelayMs(
      failedAttempts(task),
      this.#ctx.options.retryDelayMs,
      this.#random(),
    );
    task.phase = "pending";
    const timer = this.#clock.setTimeout(() => {
      this.#timers.delete(timer);
      void this.#submit(task, false).catch((error) => this.#abort(error));
    }, delay);
    this.#timers.add(timer);
    this.#notify();
  }

  #fail(task: TaskState, error: Error): void {
    task.phase = "failed";
    this.#settledTasks++;
    this.finishOrder.push(task.index);
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
    this.error = this.#fatal = error instanceof Error ? error : new Error(errorMessage(error));
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
    // The session stays open until `close`: a result found unusable when it
    // is read is computed again (`reopen`).
    void this.#maybeWriteStatus(true);
    this.#reportProgress(true);
  }

  /**
   * Run a done task again: its result turned out unusable when it was read
   * (damaged, or left by another job under the same key).
   *
   * @throws {Error} The job is stopping or stopped, so nothing can run.
   */
  async reopen(index: number): Promise<void> {
    const task = this.tasks[index]!;
    if (this.#shuttingDown || (this.phase !== "running" && this.phase !== "done")) {
      throw this.#fatal ?? new JobInterruptedError(this.#ctx.layout.key);
    }
    if (task.phase !== "done") return;
    const finished = this.finishOrder.lastIndexOf(index);
    if (finished >= 0) this.finishOrder.splice(finished, 1);
    task.phase = "pending";
    task.winner = undefined;
    task.resultBytes = undefined;
    task.reused = false;
    this.#settledTasks--;
    this.phase = "running";
    this.error = undefined;
    this.#notify();
    await this.#submit(task, false);
  }

  #onTick(): void {
    if (this.phase !== "running" || !this.#session) return;
    const now = this.#clock.now();
    const live = [...this.#attempts.values()].filter((a) => a.endedAt === undefined);
    if (!this.#session.enforcesTimeouts) {
      const late = lateAttempts(live, now, this.#ctx.options.timeoutMs);
      for (const a of late) a.timedOut = true;
      if (late.length > 0) {
        void this.#session.cancel(late.map((a) => a.id)).catch((error) => this.#abort(error));
      }
    }
    const copies = stragglers({
      tasks: this.tasks,
      settled: this.#settledTasks,
      runtimes: this.#runtimes,
      live: live.length,
      now,
      options: this.#ctx.options,
    });
    for (const task of copies) void this.#submit(task, true).catch((error) => this.#abort(error));
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
    const now = this.#clock.now();
    if (final || now - this.#lastProgress >= PROGRESS_MS) {
      this.#clock.clearTimeout(this.#progressTimer);
      this.#progressTimer = undefined;
      this.#lastProgress = now;
      onProgress(this.progress());
    } else {
      this.#progressTimer ??= this.#clock.setTimeout(() => {
        this.#progressTimer = undefined;
        this.#reportProgress(false);
      }, PROGRESS_MS - (now - this.#lastProgress));
    }
  }

  #maybeWriteStatus(final: boolean): Promise<void> {
    const now = this.#clock.now();
    const since = now - this.#lastStatusWrite;
    const interval = Math.min(
      HEARTBEAT_MS,
      Math.max(this.#ctx.options.statusIntervalMs, STATUS_WRITE_SPACING * this.#statusWriteMs),
    );
    const due = (this.#statusDirty && since >= interval) || since >= HEARTBEAT_MS;
    // A write still under way is not followed by another at once: that one is due later.
    if (!final && (!due || this.#statusWritesQueued > 0)) return this.#statusWriting;
    this.#statusDirty = false;
    this.#lastStatusWrite = now;
    this.#statusWritesQueued++;
    this.#statusWriting = this.#statusWriting
      .then(() => this.#listCheckpoints(final))
      .then(async () => {
        const started = this.#clock.now();
        await this.#ctx.writeStatus(this, final);
        this.#statusWriteMs = this.#clock.now() - started;
      })
      .catch(() => {
        this.#statusDirty = true; // try again on the next tick
      })
      .finally(() => this.#statusWritesQueued--);
    return this.#statusWriting;
  }

  /**
   * Note when each task last checkpointed, and remove the checkpoints of
   * tasks that are done; at most every {@linkcode CHECKPOINT_LIST_MS} unless `now`.
   */
  async #listCheckpoints(now: boolean): Promise<void> {
    const at = this.#clock.now();
    if (!now && at - this.#checkpointsListedAt < CHECKPOINT_LIST_MS) return;
    this.#checkpointsListedAt = at;
    const { storage, layout, manifest } = this.#ctx;
    await refreshCheckpoints(storage, layout, this.tasks, manifest.itemsPerTask).catch(() => {});
  }

  #shuttingDown: Promise<void> | undefined;

  #shutdown(stopRunning: boolean): Promise<void> {
    this.#shuttingDown ??= (async () => {
      this.#clock.clearInterval(this.#tick);
      this.#clock.clearInterval(this.#statusTimer);
      for (const timer of this.#timers) this.#clock.clearTimeout(timer);
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
