/**
 * Preparing a job in storage: upload every task's input as a stream (bounded
 * memory), then the bundle, then the manifest. A job whose manifest exists
 * is checked instead: same bundle, same inputs, or a `JobMismatchError`.
 * A failed upload removes what it wrote, so no half-prepared job remains.
 *
 * @module
 */

import { createHash } from "node:crypto";
import type { Bundle } from "../bundle.ts";
import { JobMismatchError } from "../errors.ts";
import { BoundedPool } from "../pool.ts";
import { type EncodedValue, encodeRecord, encodeValue, recordBody } from "../format/records.ts";
import { readJson, type Storage } from "../storage/storage.ts";
import { type InputSource, iterateInputs } from "../task_module.ts";
import type { JobLayout } from "../format/layout.ts";
import type { InputHeader, Manifest } from "../format/manifest.ts";

/** What {@linkcode prepareJob} needs. */
export interface PrepareOptions {
  storage: Storage;
  layout: JobLayout;
  /** URL of the task module, recorded in the manifest. */
  module: string;
  bundle: Bundle;
  inputs: InputSource;
  itemsPerTask: number;
  /** Replace a stored job made from another module or other inputs. */
  overwrite: boolean;
  /** Most uploads at once. */
  uploadConcurrency: number;
  /** Most bytes of serialized inputs held at once. */
  uploadBytes: number;
}

/** One task's serialized input. */
interface TaskInput {
  header: Omit<InputHeader, "encoding" | "size">;
  value: EncodedValue;
}

/** Group inputs into tasks and serialize each, naming the first bad input. */
async function* serializeTasks(
  source: InputSource,
  itemsPerTask: number,
): AsyncIterable<TaskInput> {
  let batch: unknown[] = [];
  let first = 0;
  let task = 0;
  const flush = (): TaskInput => {
    const header = {
      kind: "input" as const,
      task,
      first,
      count: batch.length,
      batch: itemsPerTask > 1,
    };
    let value: EncodedValue;
    if (itemsPerTask > 1) {
      try {
        value = encodeValue(batch, `the inputs of task ${task}`);
      } catch (error) {
        // Name the exact input at fault.
        batch.forEach((item, i) => encodeValue(item, `input ${first + i}`));
        throw error;
      }
    } else {
      value = encodeValue(batch[0], `input ${first}`);
    }
    const out = { header, value };
    first += batch.length;
    task++;
    batch = [];
    return out;
  };
  for await (const item of iterateInputs(source)) {
    batch.push(item);
    if (batch.length === itemsPerTask) yield flush();
  }
  if (batch.length > 0) yield flush();
}

/**
 * Make sure storage holds the job: prepare it, or check the stored one.
 * Returns the manifest.
 *
 * @throws {JobMismatchError} A stored job with this key differs and `overwrite` is off.
 * @throws {TypeError} An input cannot be serialized (nothing stays uploaded).
 */
export async function prepareJob(options: PrepareOptions): Promise<Manifest> {
  const { storage, layout, bundle } = options;
  const stored = await storage.stat(layout.manifest)
    ? await readJson<Manifest>(storage, layout.manifest)
    : undefined;
  if (stored) {
    const mismatch = await findMismatch(stored, options);
    if (!mismatch) return stored;
    if (!options.overwrite) {
      throw new JobMismatchError(
        layout.key,
        `Cannot reuse job '${layout.key}': ${mismatch}; use a new job key, or overwrite the stored job and its results with --overwrite`,
      );
    }
    await deletePrefix(storage, layout.prefix);
  }

  const digest = createHash("sha256");
  let tasks = 0;
  let count = 0;
  const pool = new BoundedPool({
    concurrency: options.uploadConcurrency,
    maxWeight: options.uploadBytes,
  });
  try {
    for await (const { header, value } of serializeTasks(options.inputs, options.itemsPerTask)) {
      digest.update(value.bytes);
      tasks++;
      count += header.count;
      await pool.add(value.bytes.length, async () => {
        await storage.put(layout.input(header.task), recordBody(encodeRecord(header, value)));
      });
    }
    await pool.drain();
  } catch (error) {
    await pool.drain().catch(() => {});
    await deletePrefix(storage, layout.inputsPrefix).catch(() => {});
    throw error;
  }
  if (tasks === 0) {
    await deletePrefix(storage, layout.prefix);
    throw new RangeError(`Cannot run job '${layout.key}': its inputs are empty`);
  }

  await storage.put(layout.bundle, bundle.code, { contentType: "text/javascript" });
  const manifest: Manifest = {
    format: 1,
    key: layout.key,
    createdAt: new Date().toISOString(),
    module: options.module,
    bundle: { sha256: bundle.sha256, size: bundle.code.length },
    inputs: { count, digest: digest.digest("hex") },
    tasks,
    itemsPerTask: options.itemsPerTask,
  };
  await storage.put(
    layout.manifest,
    new TextEncoder().encode(JSON.stringify(manifest, null, 2) + "\n"),
    { contentType: "application/json" },
  );
  return manifest;
}

/** Say how the stored job differs from the one being run, or `undefined`. */
async function findMismatch(
  stored: Manifest,
  options: PrepareOptions,
): Promise<string | undefined> {
  if (stored.bundle.sha256 !== options.bundle.sha256) {
    return `it was made from a different task module (bundle sha256 ${
      stored.bundle.sha256.slice(0, 12)
    }…, now ${options.bundle.sha256.slice(0, 12)}…)`;
  }
  if (stored.itemsPerTask !== options.itemsPerTask) {
    return `it has ${stored.itemsPerTask} inputs per task, not ${options.itemsPerTask}`;
  }
  const digest = createHash("sha256");
  let count = 0;
  for await (const { header, value } of serializeTasks(options.inputs, options.itemsPerTask)) {
    digest.update(value.bytes);
    count += header.count;
  }
  if (count !== stored.inputs.count) {
    return `it has ${stored.inputs.count} inputs, not ${count}`;
  }
  if (digest.digest("hex") !== stored.inputs.digest) {
    return `its ${count} inputs differ from the ones given now`;
  }
  return undefined;
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
