/**
 * The task every system in the local-overhead benchmark runs: x → x².
 *
 * @module
 */

/** Inputs when none are given: 0 … 199. */
export const inputs: number[] = Array.from({ length: 200 }, (_, i) => i);

/** Square a number. */
export function task(x: number): number {
  return x * x;
}
