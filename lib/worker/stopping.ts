/**
 * Stopping a running attempt (SIGTERM, the master's Ctrl-C, a lost
 * speculative copy, a time limit): the task's `ctx.signal` fires and it gets
 * a grace period to checkpoint and return; after that, or at once when the
 * task cannot see the signal (it takes no context), its thread is killed.
 *
 * @module
 */

/** Time a stopped task gets to checkpoint and return, unless the job says otherwise. */
export const DEFAULT_GRACE_MS = 25_000;

/** One attempt's stop: requested or not, and when its thread must be killed. */
export class AttemptStop {
  /** The attempt. */
  readonly attempt: string;
  readonly #graceMs: number;
  #reason: string | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #signalTask: ((reason: string) => void) | undefined;
  #kill: () => void = () => {};
  /** Resolves when the task's time is up: kill its thread. */
  readonly killed: Promise<"killed">;

  /** A stop for `attempt`, giving its task `graceMs` once requested. */
  constructor(attempt: string, graceMs: number) {
    this.attempt = attempt;
    this.#graceMs = graceMs;
    this.killed = new Promise((resolve) => {
      this.#kill = () => {
        clearTimeout(this.#timer);
        resolve("killed");
      };
    });
  }

  /** Whether a stop was requested. */
  get requested(): boolean {
    return this.#reason !== undefined;
  }

  /** Why the stop was requested. */
  get reason(): string | undefined {
    return this.#reason;
  }

  /**
   * The task now runs: a stop fires its signal through `signalTask`. A stop
   * requested before that kills at once (nothing ran yet).
   */
  running(signalTask: (reason: string) => void): void {
    this.#signalTask = signalTask;
    if (this.requested) this.#kill();
  }

  /** Ask the attempt to stop: fire the signal and start the grace period. */
  request(reason: string): void {
    if (this.requested) return;
    this.#reason = reason;
    if (!this.#signalTask) return; // not running yet: it will not start
    this.#signalTask(reason);
    this.#timer = setTimeout(this.#kill, this.#graceMs);
  }

  /** The task answered the signal: a task that cannot see it is killed at once. */
  stopping(listens: boolean): void {
    if (!listens) this.#kill();
  }

  /** The attempt ended: forget the timer. */
  dispose(): void {
    clearTimeout(this.#timer);
  }
}
