/**
 * What the backends that run attempts on this machine share (local
 * processes, warm workers, containers): a queue of attempts, at most
 * `parallelism` running, cancellation of queued and running attempts, and
 * the events. A subclass only starts an attempt and reports its end.
 *
 * @module
 */

import type {
  AttemptSpec,
  BackendEvent,
  BackendSession,
  ExitReason,
  JobContext,
} from "./backend.ts";

/** A started attempt, as its session keeps it. */
export interface Started {
  /** Stop the attempt; it still reports its end (as `cancelled`). */
  stop(): void;
  /** Settles once the attempt's end was reported. */
  done: Promise<void>;
}

/** A backend session that runs queued attempts, at most `parallelism` at once. */
export abstract class QueueSession implements BackendSession {
  readonly #queue: AttemptSpec[] = [];
  readonly #running = new Map<string, Started>();
  #closed = false;

  /** A session for `job`; events go to `onEvent`. */
  constructor(
    protected readonly job: JobContext,
    protected readonly onEvent: (event: BackendEvent) => void,
  ) {}

  /**
   * Start an attempt and report its end with {@linkcode QueueSession.ended}.
   * Returns `undefined` when it could not start (after reporting why).
   */
  protected abstract start(spec: AttemptSpec): Started | undefined;

  /** Most attempts handed to `start` and not ended yet. */
  protected capacity(): number {
    return this.job.parallelism;
  }

  /** Put a started attempt that never ran back at the head of the queue. */
  protected requeue(spec: AttemptSpec): void {
    this.#running.delete(spec.attempt);
    this.#queue.unshift(spec);
    this.#pump();
  }

  /** Release what the subclass keeps once every attempt ended (warm workers). */
  protected shutdown(): Promise<void> {
    return Promise.resolve();
  }

  submit(attempts: readonly AttemptSpec[]): Promise<void> {
    if (this.#closed) return Promise.reject(new Error("Cannot submit: the session is closed"));
    this.#queue.push(...attempts);
    this.#pump();
    return Promise.resolve();
  }

  async cancel(attempts: readonly string[]): Promise<void> {
    const ids = new Set(attempts);
    for (let i = this.#queue.length - 1; i >= 0; i--) {
      const spec = this.#queue[i]!;
      if (!ids.has(spec.attempt)) continue;
      this.#queue.splice(i, 1);
      this.report(spec, "cancelled", undefined, "cancelled before it started");
    }
    const waits: Promise<void>[] = [];
    for (const id of ids) {
      const started = this.#running.get(id);
      if (!started) continue;
      started.stop();
      waits.push(started.done);
    }
    await Promise.all(waits);
  }

  /** Stop everything: workers on this machine cannot outlive the master. */
  async close(_options?: { stopRunning?: boolean }): Promise<void> {
    this.#closed = true;
    await this.cancel([...this.#queue.map((spec) => spec.attempt), ...this.#running.keys()]);
    await this.shutdown();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Whether the session is closing or closed. */
  protected get closed(): boolean {
    return this.#closed;
  }

  /** Report that an attempt started on `host`. */
  protected started(spec: AttemptSpec, host: string): void {
    this.onEvent({ type: "started", task: spec.task, attempt: spec.attempt, at: new Date(), host });
  }

  /** Report that a started attempt ended, and start the next one. */
  protected ended(
    spec: AttemptSpec,
    reason: ExitReason,
    exitCode: number | undefined,
    detail: string,
  ): void {
    this.#running.delete(spec.attempt);
    this.report(spec, reason, exitCode, detail);
    this.#pump();
  }

  /** Report an attempt's end (started or not). */
  protected report(
    spec: AttemptSpec,
    reason: ExitReason,
    exitCode: number | undefined,
    detail: string,
  ): void {
    this.onEvent({
      type: "exited",
      task: spec.task,
      attempt: spec.attempt,
      at: new Date(),
      reason,
      exitCode,
      detail,
    });
  }

  #pump(): void {
    while (!this.#closed && this.#running.size < this.capacity() && this.#queue.length > 0) {
      const spec = this.#queue.shift()!;
      const started = this.start(spec);
      if (started) this.#running.set(spec.attempt, started);
    }
  }
}
