/**
 * The checkpoint benchmark's task: checkpoints a state of `bytes` bytes (a
 * Float64Array in an object, serialized with structured clone) `times`
 * times, then restores it `times` times, timing each call from inside the
 * task: the whole path from the task thread through the worker to storage
 * and back.
 *
 * @module
 */

import type { TaskContext } from "../../mod.ts";

/** What to measure. */
export interface Spec {
  bytes: number;
  times: number;
}

/** Milliseconds of each call. */
export interface Timings {
  checkpointMs: number[];
  restoreMs: number[];
}

/** Inputs when none are given. */
export const inputs: Spec[] = [{ bytes: 1 << 20, times: 3 }];

/** See the module doc. */
export async function task(
  spec: Spec,
  ctx: TaskContext<{ step: number; weights: Float64Array }>,
): Promise<Timings> {
  const weights = new Float64Array(spec.bytes / 8);
  for (let i = 0; i < weights.length; i++) weights[i] = Math.sin(i);
  const checkpointMs: number[] = [];
  const restoreMs: number[] = [];
  for (let step = 0; step < spec.times; step++) {
    const started = performance.now();
    await ctx.checkpoint({ step, weights });
    checkpointMs.push(performance.now() - started);
  }
  for (let i = 0; i < spec.times; i++) {
    const started = performance.now();
    const state = await ctx.restore();
    restoreMs.push(performance.now() - started);
    if (state?.weights.length !== weights.length) throw new Error("the state did not come back");
  }
  return { checkpointMs, restoreMs };
}
