/**
 * Jobs in a storage root: list them, read their status, delete them.
 *
 * @module
 */

import { INDEX_PREFIX, JobLayout } from "./format/layout.ts";
import { BoundedPool } from "./pool.ts";
import { CorruptObjectError, NotFoundError } from "./errors.ts";
import { objectName, readJson } from "./format/json.ts";
import type { Storage } from "./storage/storage.ts";
import { HEARTBEAT_MS, type JobPhase, type JobStatus, type JobSummary } from "./format/status.ts";

/**
 * What `kubeface jobs` shows as a job's state: its phase, or `stale` for a
 * job marked preparing or running whose master has not written for three
 * heartbeats (it was killed; rerun it with its key to resume).
 */
export type JobState = JobPhase | "stale";

/** A job as listed. */
export interface JobListing extends JobSummary {
  state: JobState;
}

/** The state shown for a summary at time `now`. */
export function stateOf(summary: JobSummary, now: number = Date.now()): JobState {
  if (summary.phase === "running" || summary.phase === "preparing") {
    return now - Date.parse(summary.updatedAt) > 3 * HEARTBEAT_MS ? "stale" : summary.phase;
  }
  return summary.phase;
}

/** Whether a parsed summary has every field a listing shows. */
function isSummary(value: Partial<JobSummary>): value is JobSummary {
  return typeof value.job === "string" && typeof value.phase === "string" &&
    typeof value.backend === "string" && typeof value.startedAt === "string" &&
    typeof value.updatedAt === "string" && typeof value.total === "number" &&
    typeof value.done === "number" && typeof value.failed === "number";
}

/**
 * Every job with a summary in the storage root, newest first. A damaged
 * summary is left out, and `onWarning` hears which.
 */
export async function listJobs(
  storage: Storage,
  onWarning: (message: string) => void = () => {},
): Promise<JobListing[]> {
  const jobs: JobListing[] = [];
  for await (const { key } of storage.list(INDEX_PREFIX)) {
    if (!key.endsWith(".json")) continue;
    try {
      const summary = await readJson<Partial<JobSummary>>(storage, key, "job summary");
      const named = key.slice(INDEX_PREFIX.length, -".json".length);
      if (!isSummary(summary) || summary.job !== named) {
        throw new CorruptObjectError(
          objectName(storage, key, "job summary"),
          isSummary(summary)
            ? `it is the summary of job '${summary.job}'`
            : "it lacks the fields of a summary",
        );
      }
      jobs.push({ ...summary, state: stateOf(summary) });
    } catch (error) {
      if (error instanceof NotFoundError) continue; // deleted meanwhile
      if (!(error instanceof CorruptObjectError)) throw error;
      onWarning(`${error.message}; it is left out (delete it, or rerun its job)`);
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
    const status = await readJson<JobStatus>(storage, layout.statusJson, "status");
    if (status.job !== key) {
      throw new CorruptObjectError(
        objectName(storage, layout.statusJson, "status"),
        `it is the status of job '${status.job}'`,
      );
    }
    return status;
  } catch (error) {
    if (error instanceof NotFoundError) {
      throw new NotFoundError(storage.url + layout.statusJson, { cause: error });
    }
    if (error instanceof CorruptObjectError) {
      throw new CorruptObjectError(
        error.object,
        `${error.detail}; rerun job '${key}' with its key to write it again`,
      );
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

/** Delete every object under a prefix. */
export async function deletePrefix(storage: Storage, prefix: string): Promise<number> {
  const pool = new BoundedPool({ concurrency: 16 });
  let deleted = 0;
  for await (const { key } of storage.list(prefix)) {
    deleted++;
    await pool.add(1, () => storage.delete(key));
  }
  await pool.drain();
  return deleted;
}
