/**
 * Time as the master's job loop sees it: injected, so the loop's policies
 * (backoff, timeouts, speculation, status rewrites) can be tested without
 * waiting for real time to pass.
 *
 * @module
 */

/** A timer, as the clock that made it knows it. */
export type TimerId = unknown;

/** A clock and its timers. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Call `fn` once after `ms`; returns an id for {@linkcode Clock.clearTimeout}. */
  setTimeout(fn: () => void, ms: number): TimerId;
  /** Cancel a timeout; `undefined` or a fired timer is ignored. */
  clearTimeout(id: TimerId): void;
  /** Call `fn` every `ms`; returns an id for {@linkcode Clock.clearInterval}. */
  setInterval(fn: () => void, ms: number): TimerId;
  /** Cancel an interval; `undefined` is ignored. */
  clearInterval(id: TimerId): void;
}

type Handle = ReturnType<typeof setTimeout>;

/** The real clock. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (id) => clearTimeout(id as Handle),
  setInterval: (fn, ms) => setInterval(fn, ms),
  clearInterval: (id) => clearInterval(id as Handle),
};
