/**
 * 40 tasks that take 1 to 8 seconds each, except that one throws and one
 * hangs for 40 seconds: a job worth watching on its status page. With a
 * time limit, the hanging one is stopped and retried.
 *
 * ```sh
 * deno run -A cli.ts map -m examples/varied.ts --parallelism 4 --no-fail-fast --timeout 10s \
 *   --max-retries 1 --job varied-demo
 * deno run -A cli.ts status varied-demo --serve
 * ```
 *
 * @module
 */

/** One sample to process: how long it takes, and whether it throws. */
export interface Sample {
  id: number;
  seconds: number;
  fail?: boolean;
}

/** 40 samples of 1 to 8 seconds; sample 17 has no readings, sample 29 takes 40 seconds. */
export const inputs: Sample[] = Array.from({ length: 40 }, (_, id) => ({
  id,
  seconds: id === 29 ? 40 : 1 + ((id * 37) % 29) / 4,
  fail: id === 17,
}));

/** Wait as long as the sample says, then throw or return its id and duration. */
export async function task(sample: Sample): Promise<{ id: number; seconds: number }> {
  await new Promise((resolve) => setTimeout(resolve, sample.seconds * 1000));
  if (sample.fail) throw new RangeError(`Sample ${sample.id} has no readings`);
  return { id: sample.id, seconds: sample.seconds };
}
