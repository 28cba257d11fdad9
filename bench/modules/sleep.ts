/**
 * The fairness task: sleeps for its input, in milliseconds, and returns it.
 *
 * @module
 */

/** Inputs when none are given. */
export const inputs: number[] = [100, 200, 300];

/** Sleep `ms` milliseconds. */
export function task(ms: number): Promise<number> {
  return new Promise((resolve) => setTimeout(() => resolve(ms), ms));
}
