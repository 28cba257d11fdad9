/**
 * Idle capacity of a job: how long its P slots sat without a running task,
 * from the workers' own start and end records, and the same for an ideal
 * schedule of the same task lengths with no overhead.
 *
 * @module
 */

/** A task's run, in milliseconds (any common clock). */
export interface Interval {
  start: number;
  end: number;
}

/**
 * Slot-milliseconds during which fewer than `slots` tasks ran, between `from`
 * and `to`: the integral of `slots - min(slots, running(t))`.
 *
 * @throws {RangeError} `to` is before `from`, or `slots` is not positive.
 */
export function idleSlotTime(
  intervals: readonly Interval[],
  slots: number,
  from: number,
  to: number,
): number {
  if (!(to >= from)) throw new RangeError(`Cannot measure idle time from ${from} to ${to}`);
  if (!(slots > 0)) throw new RangeError(`Cannot measure idle time with ${slots} slots`);
  const points = intervals.flatMap((i) => [
    { at: Math.min(Math.max(i.start, from), to), delta: 1 },
    { at: Math.min(Math.max(i.end, from), to), delta: -1 },
  ]).sort((a, b) => a.at - b.at || a.delta - b.delta);
  let idle = 0;
  let running = 0;
  let last = from;
  for (const p of points) {
    idle += (slots - Math.min(slots, running)) * (p.at - last);
    running += p.delta;
    last = p.at;
  }
  return idle + (slots - Math.min(slots, running)) * (to - last);
}

/**
 * The makespan of running `durations` in order on `slots` slots, each task
 * starting the moment a slot is free (greedy list scheduling, no overhead).
 */
export function listScheduleMakespan(durations: readonly number[], slots: number): number {
  const free = Array<number>(slots).fill(0);
  for (const d of durations) {
    let best = 0;
    for (let s = 1; s < slots; s++) if (free[s]! < free[best]!) best = s;
    free[best] = free[best]! + d;
  }
  return Math.max(0, ...free);
}

/** A seeded pseudo-random generator (mulberry32) returning numbers in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
