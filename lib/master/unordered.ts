/**
 * Results as tasks finish (`map(…, { ordered: false })`, `kubeface map
 * --unordered`), like Python's `as_completed`: each task's entries are
 * yielded once its result is stored, in the order tasks finished, reading a
 * bounded number of results ahead of the consumer.
 *
 * A failed task behaves as in input order: by default (fail fast) the
 * iteration throws at once; with `failFast: false`, every other task's
 * results are yielded as they finish and the first failure is thrown at
 * the end.
 *
 * @module
 */

import type { Entry } from "./run.ts";
import type { JobRunner } from "./runner.ts";
import type { TaskState } from "./state.ts";

/**
 * A task's values and inputs, read from storage; `undefined` when its
 * result was damaged and the task runs again (it finishes again later).
 */
export type ReadTask<I, O> = (
  task: TaskState,
) => Promise<{ values: O[]; inputs: I[] } | undefined>;

/** Most results read ahead of the consumer. */
const READ_AHEAD = 8;

/** Yield every task's entries in the order the tasks finished. */
export async function* unorderedResults<I, O>(
  runner: JobRunner,
  read: ReadTask<I, O>,
  itemsPerTask: number,
): AsyncGenerator<Entry<I, O>> {
  const reads = new Map<number, Promise<{ values: O[]; inputs: I[] } | undefined>>();
  const start = (state: TaskState) => {
    if (state.phase !== "done" || reads.has(state.index)) return;
    const reading = read(state);
    reading.catch(() => {}); // awaited later; avoid an unhandled rejection meanwhile
    reads.set(state.index, reading);
  };
  let failure: Error | undefined;
  for (let n = 0;; n++) {
    const state = await runner.settledNth(n);
    if (!state) break;
    if (state.phase === "failed") {
      failure ??= state.error;
      continue;
    }
    for (let ahead = n; ahead < n + READ_AHEAD && ahead < runner.finishOrder.length; ahead++) {
      start(runner.tasks[runner.finishOrder[ahead]!]!);
    }
    start(state);
    const read = await reads.get(state.index)!;
    reads.delete(state.index);
    if (!read) {
      n--; // reopened: it left the finish order, and comes back when it is done again
      continue;
    }
    const { values, inputs } = read;
    for (let i = 0; i < values.length; i++) {
      yield {
        index: state.index * itemsPerTask + i,
        input: inputs[i] as I,
        value: values[i] as O,
      };
    }
  }
  if (failure) throw failure;
}
