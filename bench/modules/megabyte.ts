/**
 * A task that returns 1 MiB: the master-memory benchmark maps it over
 * thousands of inputs and consumes the results in order.
 *
 * @module
 */

/** Inputs when none are given: 0 … 999. */
export const inputs: number[] = Array.from({ length: 1000 }, (_, i) => i);

/** One MiB of bytes, all equal to `i % 256`. */
export function task(i: number): Uint8Array {
  return new Uint8Array(1 << 20).fill(i & 255);
}
