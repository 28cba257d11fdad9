/**
 * A long task that survives preemption: estimate π from random points, in
 * batches. Each input is a seed and a number of batches. The task keeps its
 * progress (and its random generator's state, so a resumed run draws the
 * same points) in a checkpoint every 100 batches, resumes from the last one
 * when it runs again, and checkpoints at once and stops when its signal
 * fires. A run that was preempted any number of times gives the same
 * estimate as one that never was.
 *
 * ```sh
 * kubeface map --module examples/pi.ts --backend kubernetes --storage gs://BUCKET/runs \
 *   --spot --grace 10s --parallelism 100 --memory 512Mi --cpu 1
 * ```
 *
 * @module
 */

import type { TaskContext } from "../lib/task.ts";

/** One estimate per seed. */
export const inputs: { seed: number; batches: number }[] = Array.from(
  { length: 8 },
  (_, i) => ({ seed: i + 1, batches: 20_000 }),
);

/** Points drawn per batch. */
const POINTS = 100_000;

/** How far a task got: what a checkpoint holds. */
export interface Progress {
  batch: number;
  inside: number;
  /** The random generator's state. */
  rng: number;
}

/** 4 × the share of random points of the unit square inside the quarter circle. */
export async function task(
  input: { seed: number; batches: number },
  ctx: TaskContext<Progress>,
): Promise<number> {
  const state = (await ctx.restore()) ?? { batch: 0, inside: 0, rng: input.seed };
  while (state.batch < input.batches) {
    if (ctx.signal.aborted) {
      // Preempted, drained, past the time limit or stopped: save, and give the attempt up.
      await ctx.checkpoint(state);
      ctx.signal.throwIfAborted();
    }
    for (let i = 0; i < POINTS; i++) {
      const x = next(state);
      const y = next(state);
      if (x * x + y * y <= 1) state.inside++;
    }
    state.batch++;
    if (state.batch % 100 === 0) await ctx.checkpoint(state); // the most work a lost node costs
    // Between batches, let the stop signal in: it arrives as a message.
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  return (4 * state.inside) / (input.batches * POINTS);
}

/** A random number from 0 to 1 (mulberry32); its state lives in the checkpoint. */
function next(state: Progress): number {
  let t = (state.rng = (state.rng + 0x6d2b79f5) >>> 0);
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
