/**
 * What a task gets besides its input: `task(input, ctx)`. A task declared
 * with one parameter keeps working as before; it cannot see the stop signal,
 * so it is stopped at once when its attempt is.
 *
 * @module
 */

/**
 * The second argument of a task: which input and attempt it runs, a signal
 * that fires when the attempt is being stopped, and checkpoints that let a
 * later attempt resume where this one stopped.
 *
 * Checkpoints are stored in the job's storage, one per input, each
 * replacing the one before; they are removed once the task's result is
 * stored, and kept when the job is interrupted, so a rerun with the same
 * job key resumes every unfinished task from its last checkpoint.
 *
 * The signal fires on SIGTERM (a Kubernetes pod being deleted, drained or
 * preempted; a container being stopped), on the master's Ctrl-C, when the
 * attempt is a speculative copy that lost, and at its time limit. The task
 * then has the job's grace period (`graceMs`, `--grace`, 25 s by default)
 * to checkpoint and return (or throw); after that it is killed. An attempt
 * stopped by a preemption, a drain or a container stop does not count
 * against `maxRetries`.
 *
 * @typeParam S The state a checkpoint holds: anything structured clone
 * copies (numbers, strings, plain objects and arrays, typed arrays, `Map`,
 * `Set`, `Date`, `BigInt`).
 *
 * @example A task that resumes from its last checkpoint
 * ```ts
 * import assert from "node:assert/strict";
 * import { map } from "@kubeface/kubeface";
 *
 * const dir = await Deno.makeTempDir();
 * const api = new URL("./lib/task.ts", import.meta.resolve("@kubeface/kubeface"));
 * // The sum of i² for i below n, checkpointing {step, sum} every 1,000 steps and
 * // at once when its signal fires.
 * await Deno.writeTextFile(
 *   `${dir}/sums.ts`,
 *   `import type { TaskContext } from "${api}";
 * export async function task(n: number, ctx: TaskContext<{ step: number; sum: number }>) {
 *   let { step, sum } = (await ctx.restore()) ?? { step: 0, sum: 0 };
 *   for (; step < n; step++) {
 *     if (ctx.signal.aborted || step % 1000 === 0) await ctx.checkpoint({ step, sum });
 *     ctx.signal.throwIfAborted();
 *     sum += step * step;
 *   }
 *   return sum;
 * }\n`,
 * );
 * const sums = await Array.fromAsync(
 *   map<number, number>(`${dir}/sums.ts`, { storage: `${dir}/runs`, inputs: [10, 300] }),
 * );
 * assert.deepEqual(sums, [285, 8955050]);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export interface TaskContext<S = unknown> {
  /** Index of the input the task runs (in a task of several inputs, the current one's). */
  readonly index: number;
  /**
   * Id of the attempt: its result is stored as `results/<task>/<attempt>.ok`.
   * Every attempt the master starts has its own id; a pod that Kubernetes
   * restarts by itself keeps its attempt's id.
   */
  readonly attempt: string;
  /**
   * Fires when the attempt is being stopped; its `reason` says why. Pass it
   * to `fetch` and other cancellable calls, or check `signal.aborted`
   * between steps: checkpoint, then return or throw.
   */
  readonly signal: AbortSignal;
  /**
   * A private directory the task may write without any permission: write
   * result files here and return them with `file(path)` (from
   * `@kubeface/kubeface/lib/task.ts`). It lives as long as its worker; a
   * file returned is moved to storage.
   */
  readonly scratch: string;
  /**
   * Store `state` as this input's checkpoint, atomically, replacing the
   * previous one. Resolves once it is stored. Calls are stored in order.
   *
   * @param state Any structured-cloneable value.
   * @throws {TypeError} The state cannot be cloned; the message names the
   * part that cannot (e.g. `state.model.activate is a function`).
   * @throws {Error} Storage failed.
   */
  checkpoint(state: S): Promise<void>;
  /**
   * The last checkpoint of this input from an earlier attempt (or from this
   * one), or `undefined` when there is none. A damaged checkpoint is
   * ignored with a warning in the attempt's log: the task starts from zero.
   */
  restore(): Promise<S | undefined>;
}
