// deno-lint-ignore-file no-console
/**
 * A job file: map a task module from a script and use the results as they
 * arrive, in input order.
 *
 * ```sh
 * deno run -A examples/job.ts
 * ```
 *
 * @module
 */

import { map } from "../mod.ts";

const squares = map<number, number>(new URL("./squares.ts", import.meta.url), {
  inputs: Array.from({ length: 20 }, (_, i) => i),
  parallelism: 4,
});
let sum = 0;
for await (const square of squares) sum += square;
console.log(`job ${squares.job}: the sum of the first 20 squares is ${sum}`);
