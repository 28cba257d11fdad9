/**
 * The squares of 0 to 99: the smallest useful task module.
 *
 * ```sh
 * deno run -A cli.ts map --module examples/squares.ts
 * ```
 *
 * @module
 */

/** The numbers to square. */
export const inputs: number[] = Array.from({ length: 100 }, (_, i) => i);

/** Square a number. */
export function task(x: number): number {
  return x * x;
}
