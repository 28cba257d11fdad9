/**
 * Jobs in a storage root: list them, read their status, delete them.
 *
 * @module
 */

import { JobLayout } from "./format/layout.ts";
import { deletePrefix } from "./master/prepare.ts";
import { NotFoundError } from "./errors.ts";
import { readJson, type Storage } from "./storage/storage.ts";
import { HEARTBEAT_MS, type JobPhase, type JobStatus, type JobSummary } from "./format/status.ts";

/**
 * What `kubeface jobs` shows as a job's state: its phase, or `stale` for a
 * job marked running whose master has not written for three heartbeats
 * (it was killed; rerun it with its key to resume).
 */
export type JobState = Exclude<JobPhase, "preparing"> | "stale";

/** A job as listed. */
export interface JobListing extends JobSummary {
  state: JobState;
}

/** The state shown for a summary at time `now`. */
export function stateOf(summary: JobSummary, now: number = Date.now()): JobState {
  if (summary.phase === "running" || summary.phase === "preparing") {
    return now - Date.parse(summary.updatedAt) > 3 * HEARTBEAT_MS ? "stale" : "running";
  }
  return summary.phase;
}

/** Every job with a summary in the storage root, newest first. */
export async function listJobs(storage: Storage): Promise<JobListing[]> {
  const jobs: JobListing[] = [];
  for await (const { key } of storage.list("index/")) {
    if (!key.endsWith(".json")) continue;
    try {
      const summary = await readJson<JobSummary>(storage, key);
      jobs.push({ ...summary, state: stateOf(summary) });
    } catch (error) {
      if (!(error instanceof NotFoundError)) throw error; // deleted meanwhile
    }
  }
  return jobs.sort((a, b) => b.startedAt.localeCompare(a.startedAt));
}

/**
 * The status page of a job.
 *
 * @throws {NotFoundError} No job with that key has a status page.
 */
export async function readStatus(storage: Storage, key: string): Promise<JobStatus> {
  const layout = new JobLayout(key);
  try {
    return await readJson<JobStatus>(storage, layout.statusJson);
  } catch (error) {
    if (error instanceof NotFoundError) {
      throw new NotFoundError(storage.url + layout.statusJson, { cause: error });
    }
    throw error;
  }
}

/** Number of objects a job has in storage, their bytes, and how many are checkpoints. */
export async function countObjects(
  storage: Storage,
  key: string,
): Promise<{ objects: number; bytes: number; checkpoints: number }> {
  const layout = new JobLayout(key);
  let objects = 0;
  let bytes = 0;
  let checkpoints = 0;
  for await (const info of storage.list(layout.prefix)) {
    objects++;
    bytes += info.size;
    if (layout.parseCheckpoint(info.key) !== undefined) checkpoints++;
  }
  return { objects, bytes, checkpoints };
}

/** Delete every object of a job, then its summary. Returns the number deleted. */
export async function deleteJob(storage: Storage, key: string): Promise<number> {
  const layout = new JobLayout(key);
  const deleted = await deletePrefix(storage, layout.prefix);
  await storage.delete(layout.summary);
  return deleted;
}
