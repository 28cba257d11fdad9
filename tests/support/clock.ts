/**
 * A clock whose time moves only when a test says so, for the job loop's
 * policies (backoff, timeouts, speculation).
 *
 * @module
 */

import type { Clock, TimerId } from "../../lib/master/clock.ts";

interface Timer {
  at: number;
  fn: () => void;
  every?: number;
}

/** A {@linkcode Clock} moved by {@linkcode ManualClock.advance}. */
export class ManualClock implements Clock {
  #now: number;
  #next = 1;
  readonly #timers = new Map<number, Timer>();

  /** A clock that reads `start` until advanced. */
  constructor(start = Date.UTC(2026, 0, 1)) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): TimerId {
    const id = this.#next++;
    this.#timers.set(id, { at: this.#now + Math.max(0, ms), fn });
    return id;
  }

  clearTimeout(id: TimerId): void {
    this.#timers.delete(id as number);
  }

  setInterval(fn: () => void, ms: number): TimerId {
    const id = this.#next++;
    this.#timers.set(id, { at: this.#now + ms, fn, every: Math.max(1, ms) });
    return id;
  }

  clearInterval(id: TimerId): void {
    this.#timers.delete(id as number);
  }

  /** Timers still armed. */
  get pending(): number {
    return this.#timers.size;
  }

  /**
   * Move time forward by `ms`, running each timer that falls due, in time
   * order, and letting the work it starts settle before the next one.
   */
  async advance(ms: number): Promise<void> {
    const end = this.#now + ms;
    for (;;) {
      let due: [number, Timer] | undefined;
      for (const entry of this.#timers) {
        if (entry[1].at <= end && (!due || entry[1].at < due[1].at)) due = entry;
      }
      if (!due) break;
      const [id, timer] = due;
      this.#now = timer.at;
      if (timer.every) timer.at += timer.every;
      else this.#timers.delete(id);
      timer.fn();
      for (let i = 0; i < 20; i++) await Promise.resolve(); // what the timer started, in memory
    }
    this.#now = end;
    await settle(); // and what it started on storage
  }
}

/** Let promises and pending I/O callbacks run: a few turns of the event loop. */
export async function settle(turns = 5): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise((resolve) => setTimeout(resolve, 0));
}
