/**
 * A long task that survives preemption. It works in steps (here: adding i²
 * for i below n, one millisecond each, standing for real work), keeps its
 * progress in a checkpoint every 1,000 steps (a second), resumes from the last one when
 * it runs again, and when its signal fires (the pod is preempted, the job
 * is stopped) it checkpoints at once and stops.
 *
 * ```sh
 * kubeface map --module examples/long_task.ts                   # here
 * kubeface map --module examples/long_task.ts --backend kubernetes \
 *   --storage gs://BUCKET/runs --spot --grace 10s                # on GKE spot nodes
 * ```
 *
 * @module
 */

import type { TaskContext } from "../lib/task.ts";

/** One input per task: how many steps it takes. */
export const inputs: number[] = [20_000, 30_000, 40_000];

/** What a checkpoint holds: how far the task got. */
export interface Progress {
  step: number;
  sum: number;
}

/** Steps between checkpoints: at most this much work is lost when a node vanishes. */
const EVERY = 1000;

/** The sum of i² for i below n, resumable. */
export async function task(n: number, ctx: TaskContext<Progress>): Promise<number> {
  let { step, sum } = (await ctx.restore()) ?? { step: 0, sum: 0 };
  while (step < n) {
    if (ctx.signal.aborted) {
      // Being stopped: save what we have, then give up this attempt.
      await ctx.checkpoint({ step, sum });
      ctx.signal.throwIfAborted();
    }
    sum += step * step;
    step++;
    if (step % EVERY === 0) await ctx.checkpoint({ step, sum });
    if (step % 10 === 0) await new Promise((resolve) => setTimeout(resolve, 10)); // real work here
  }
  return sum;
}
