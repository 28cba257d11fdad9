/**
 * Reading a task's result (and input) back on the master, checked: a
 * result counts only when its record is whole (checksums) and is the one
 * its name says — this job, this task, this attempt, this preparation of
 * the job (the manifest id).
 *
 * @module
 */

import { CorruptObjectError } from "../errors.ts";
import { StoredFile } from "../file_store.ts";
import { type FileEntry, fromSlots } from "../files.ts";
import { objectName } from "../format/json.ts";
import type { JobLayout } from "../format/layout.ts";
import type { InputHeader, Manifest, ResultHeader } from "../format/manifest.ts";
import { readRecord } from "../format/records.ts";
import type { Storage } from "../storage/storage.ts";

/** A value with its file slots replaced by the stored files its header lists. */
function withStoredFiles(
  value: unknown,
  files: FileEntry[] | undefined,
  storage: Storage,
  what: string,
): unknown {
  if (!files?.length) return value;
  return fromSlots(value, (slot) => {
    const entry = files[slot.slot];
    if (!entry) {
      throw new CorruptObjectError(what, `it refers to file ${slot.slot}, which it does not list`);
    }
    return new StoredFile(storage.url, entry);
  });
}

/** The values of one task (one per input of the task) and, when asked, its inputs. */
export interface TaskValues<I, O> {
  values: O[];
  inputs: I[];
}

/**
 * Read and check the value an attempt stored for a task.
 *
 * @throws {CorruptObjectError} The record is damaged or not this attempt's.
 * @throws {NotFoundError} It is gone.
 */
export async function readResult<O>(
  storage: Storage,
  layout: JobLayout,
  manifest: Manifest,
  task: number,
  attempt: string,
): Promise<O[]> {
  const key = layout.result(task, attempt, "ok");
  const what = objectName(storage, key, `result of task ${task}`);
  const { header, value } = await readRecord<ResultHeader>(await storage.get(key), what);
  const mismatch = header.kind !== "result" || header.status !== "ok"
    ? "it is not a value record"
    : header.job !== layout.key || header.task !== task || header.attempt !== attempt
    ? `it says it is task ${header.task}, attempt ${header.attempt} of job '${header.job}'`
    : manifest.id !== undefined && header.manifest !== manifest.id
    ? "it was stored for an earlier job under the same key"
    : undefined;
  if (mismatch) throw new CorruptObjectError(what, mismatch);
  const revived = withStoredFiles(value, header.files, storage, what);
  return manifest.itemsPerTask > 1 ? revived as O[] : [revived as O];
}

/**
 * Read a task's inputs back.
 *
 * @throws {CorruptObjectError} The record is damaged; the job must be overwritten.
 */
export async function readInputs<I>(
  storage: Storage,
  layout: JobLayout,
  manifest: Manifest,
  task: number,
): Promise<I[]> {
  const key = layout.input(task);
  const what = objectName(storage, key, `input of task ${task}`);
  const { header, value } = await readRecord<InputHeader>(await storage.get(key), what).catch(
    (error) => {
      throw error instanceof CorruptObjectError
        ? new CorruptObjectError(error.object, `${error.detail}; replace the job with --overwrite`)
        : error;
    },
  );
  if (header.task !== task) {
    throw new CorruptObjectError(
      what,
      `it says it is the input of task ${header.task}; replace the job with --overwrite`,
    );
  }
  const revived = withStoredFiles(value, header.files, storage, what);
  return manifest.itemsPerTask > 1 ? revived as I[] : [revived as I];
}
