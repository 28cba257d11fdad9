/**
 * The preemption benchmark's task: `steps` steps of `stepMs` each (a sleep,
 * standing for work), one byte appended to `<dir>/steps-<index>` per step
 * so the benchmark can count the work done, whatever became of the
 * attempt. With `every` > 0 it checkpoints every `every` steps and resumes
 * from the last checkpoint; when its signal fires it checkpoints and stops.
 * It leaves `<dir>/start-<index>-<random>` (`{"pid", "from"}`) when it starts.
 *
 * @module
 */

import type { TaskContext } from "../../mod.ts";

/** One task. */
export interface Plan {
  steps: number;
  stepMs: number;
  /** Steps between checkpoints; 0 for none. */
  every: number;
  /** Marker directory. */
  dir: string;
}

/** Inputs when none are given. */
export const inputs: Plan[] = [];

/** Do the steps left; returns the number of steps. */
export async function task(plan: Plan, ctx: TaskContext<{ step: number }>): Promise<number> {
  const restored = plan.every > 0 ? await ctx.restore() : undefined;
  let step = restored?.step ?? 0;
  await Deno.writeTextFile(
    `${plan.dir}/start-${ctx.index}-${crypto.randomUUID().slice(0, 8)}`,
    JSON.stringify({ pid: Deno.pid, from: step }),
  );
  const progress = `${plan.dir}/steps-${ctx.index}`;
  while (step < plan.steps) {
    if (ctx.signal.aborted) {
      if (plan.every > 0) await ctx.checkpoint({ step });
      ctx.signal.throwIfAborted();
    }
    await new Promise((resolve) => setTimeout(resolve, plan.stepMs));
    step++;
    await Deno.writeTextFile(progress, "x", { append: true });
    if (plan.every > 0 && step % plan.every === 0) await ctx.checkpoint({ step });
  }
  return step;
}
