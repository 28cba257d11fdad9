/**
 * A task that rejects bad inputs by throwing: the error, with its stack,
 * reaches the master as a `TaskError` naming the input.
 *
 * ```sh
 * deno run -A cli.ts map --module examples/checked.ts   # fails on input 2
 * ```
 *
 * @module
 */

/** Some numbers; one of them is negative. */
export const inputs: number[] = [4, 9, -1, 16];

/** The square root of a number that must not be negative. */
export function task(x: number): number {
  if (x < 0) throw new RangeError(`cannot take the square root of ${x}`);
  return Math.sqrt(x);
}
