/**
 * The master's view of a job's checkpoints (`jobs/<key>/checkpoints/`): when
 * each unfinished task last checkpointed, for the status pages, and the
 * removal of checkpoints left behind by tasks that are done (a worker that
 * died between storing its result and removing its checkpoint, or a losing
 * copy that saved its state late). One listing of the prefix does both.
 *
 * @module
 */

import type { JobLayout } from "../format/layout.ts";
import type { Storage } from "../storage/storage.ts";
import type { TaskState } from "./state.ts";

/** Most often the checkpoints are listed while a job runs, in milliseconds. */
export const CHECKPOINT_LIST_MS = 10_000;

/**
 * List a job's checkpoints: set `checkpointAt` on every task that has one
 * (the latest of its inputs'), clear it on the others, and delete those of
 * tasks that are done. Returns the number of checkpoints deleted.
 */
export async function refreshCheckpoints(
  storage: Storage,
  layout: JobLayout,
  tasks: readonly TaskState[],
  itemsPerTask: number,
): Promise<number> {
  const latest = new Map<number, number>();
  const leftovers: string[] = [];
  for await (const info of storage.list(layout.checkpointsPrefix)) {
    const input = layout.parseCheckpoint(info.key);
    if (input === undefined) continue;
    const task = tasks[Math.floor(input / itemsPerTask)];
    if (!task) continue;
    if (task.phase === "done") leftovers.push(info.key);
    else latest.set(task.index, Math.max(latest.get(task.index) ?? 0, info.updated.getTime()));
  }
  for (const task of tasks) {
    const at = latest.get(task.index);
    if (at === undefined) delete task.checkpointAt;
    else task.checkpointAt = at;
  }
  for (const key of leftovers) await storage.delete(key).catch(() => {});
  return leftovers.length;
}
