/**
 * Preparing a job in storage: upload every task's input as a stream (bounded
 * memory, at most `maxInputs` inputs, yielding to the event loop so a stop
 * is heard at once), then the bundle, then the manifest. A job whose
 * manifest exists is checked instead: same bundle, same inputs, or a
 * `JobMismatchError`. A failed upload removes what it wrote, so no
 * half-prepared job remains; a stopped one leaves its inputs for a rerun to
 * replace (or `cleanup` to remove).
 *
 * @module
 */

import { createHash } from "node:crypto";
import type { Bundle } from "../bundle.ts";
import {
  CorruptObjectError,
  errorMessage,
  JobInterruptedError,
  JobMismatchError,
} from "../errors.ts";
import { fileEntry, putFile } from "../file_store.ts";
import { FILE_KIND, type FileEntry, isLocalRef, toSlots } from "../files.ts";
import { findRefs } from "../refs.ts";
import { objectName, readJson, writeJson } from "../format/json.ts";
import type { JobLayout } from "../format/layout.ts";
import { type InputHeader, type Manifest, MANIFEST_FORMAT } from "../format/manifest.ts";
import { type EncodedValue, encodeRecord, encodeValue, recordBody } from "../format/records.ts";
import { deletePrefix } from "../catalog.ts";
import { BoundedPool } from "../pool.ts";
import { sharedRefs } from "../shared.ts";
import type { Storage } from "../storage/storage.ts";
import { type InputSource, iterateInputs } from "../task_module.ts";

/** What {@linkcode prepareJob} needs. */
export interface PrepareOptions {
  storage: Storage;
  layout: JobLayout;
  /** URL of the task module, recorded in the manifest. */
  module: string;
  bundle: Bundle;
  inputs: InputSource;
  itemsPerTask: number;
  /** Replace a stored job made from another module or other inputs, or a damaged one. */
  overwrite: boolean;
  /** Most uploads at once. */
  uploadConcurrency: number;
  /** Most bytes of serialized inputs held at once. */
  uploadBytes: number;
  /** Most inputs; more is an error. */
  maxInputs: number;
  /** Stops the upload. */
  signal?: AbortSignal;
  /** Called as inputs are uploaded, with how many are. */
  onUploaded?: (inputs: number) => void;
  /** Throws when this master may no longer write the manifest (it lost the job). */
  beforeManifest?: () => Promise<void>;
}

/** One task's serialized input. */
interface TaskInput {
  header: Omit<InputHeader, "encoding" | "size" | "crc32c">;
  value: EncodedValue;
  /** Shared values its inputs refer to. */
  shared: Set<string>;
  /** Local files its inputs name, by slot, to upload. */
  files: { path: string; entry: FileEntry }[];
}

/**
 * An input with its local files replaced by slots (a copy: the user's
 * value is not touched), and the files, hashed.
 */
async function withFileSlots(
  item: unknown,
  index: number,
  layout: JobLayout,
  files: { path: string; entry: FileEntry }[],
): Promise<unknown> {
  const paths = [...findRefs(item, FILE_KIND)].filter(isLocalRef).map((ref) => ref.path);
  if (paths.length === 0) return item;
  const entries = new Map<string, FileEntry>();
  for (const path of paths) {
    try {
      entries.set(path, await fileEntry(layout, path));
    } catch (error) {
      throw new TypeError(`Cannot use input ${index}: its file '${path}': ${errorMessage(error)}`, {
        cause: error,
      });
    }
  }
  return toSlots(structuredClone(item), (path) => {
    const entry = entries.get(path)!;
    return { slot: files.push({ path, entry }) - 1, name: entry.name, size: entry.size };
  });
}

/** Hand control to the event loop this often while inputs stream, so signals are heard. */
const YIELD_MS = 50;

/**
 * Group inputs into tasks and serialize each, naming the first bad input;
 * what the inputs themselves throw comes as it is (`guardInputs` names it).
 */
async function* serializeTasks(options: PrepareOptions): AsyncIterable<TaskInput> {
  const { itemsPerTask, maxInputs, signal, storage } = options;
  let batch: unknown[] = [];
  let first = 0;
  let task = 0;
  let lastYield = Date.now();
  const flush = async (): Promise<TaskInput> => {
    const files: { path: string; entry: FileEntry }[] = [];
    for (let i = 0; i < batch.length; i++) {
      batch[i] = await withFileSlots(batch[i], first + i, options.layout, files);
    }
    const header = {
      kind: "input" as const,
      task,
      first,
      count: batch.length,
      batch: itemsPerTask > 1,
      ...(files.length ? { files: files.map((f) => f.entry) } : {}),
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
    const shared = new Set<string>();
    batch.forEach((item, i) => {
      for (const ref of sharedRefs(item)) {
        if (ref.storage !== storage.url) {
          throw new TypeError(
            `Cannot use input ${
              first + i
            }: it refers to a shared value stored in ${ref.storage}, not in the job's storage ${storage.url}; share it with a client of the job's storage`,
          );
        }
        shared.add(ref.sha256);
      }
    });
    const out = { header, value, shared, files };
    first += batch.length;
    task++;
    batch = [];
    return out;
  };
  const items = iterateInputs(options.inputs)[Symbol.asyncIterator]();
  for (let index = 0;; index++) {
    const next = await items.next();
    if (next.done) break;
    if (index >= maxInputs) {
      await items.return?.().catch(() => {});
      throw new RangeError(
        `Cannot run more than ${maxInputs} inputs: the inputs go on past that (an endless generator?); give fewer, or raise the limit with --max-inputs`,
      );
    }
    batch.push(next.value);
    if (batch.length === itemsPerTask) yield await flush();
    if (Date.now() - lastYield >= YIELD_MS) {
      await new Promise((resolve) => setTimeout(resolve, 0));
      lastYield = Date.now();
    }
    if (signal?.aborted) {
      await items.return?.().catch(() => {});
      throw signal.reason ?? new JobInterruptedError(options.layout.key);
    }
  }
  if (batch.length > 0) yield await flush();
}

/**
 * The stored manifest, if any.
 *
 * @throws {CorruptObjectError} It is damaged and `overwrite` is off.
 */
async function storedManifest(options: PrepareOptions): Promise<Manifest | undefined> {
  const { storage, layout } = options;
  if (!(await storage.stat(layout.manifest))) return undefined;
  try {
    const manifest = await readJson<Manifest>(storage, layout.manifest, "manifest");
    if (manifest.key !== layout.key) {
      throw new CorruptObjectError(
        objectName(storage, layout.manifest, "manifest"),
        `it is the manifest of job '${manifest.key}'`,
      );
    }
    return manifest;
  } catch (error) {
    if (!(error instanceof CorruptObjectError) || !options.overwrite) {
      throw error instanceof CorruptObjectError
        ? new CorruptObjectError(error.object, `${error.detail}; replace the job with --overwrite`)
        : error;
    }
    return undefined; // damaged: replaced below
  }
}

/**
 * Make sure storage holds the job: prepare it, or check the stored one.
 * Returns the manifest.
 *
 * @throws {JobMismatchError} A stored job with this key differs and `overwrite` is off.
 * @throws {CorruptObjectError} The stored manifest is damaged and `overwrite` is off.
 * @throws {TypeError} An input cannot be serialized (nothing stays uploaded).
 * @throws {TaskModuleError} The inputs threw (nothing stays uploaded).
 * @throws {RangeError} There are no inputs, or more than `maxInputs`.
 * @throws {JobInterruptedError} The signal was aborted (uploaded inputs stay, for a rerun).
 */
export async function prepareJob(options: PrepareOptions): Promise<Manifest> {
  const { storage, layout, bundle } = options;
  const stored = await storedManifest(options);
  if (stored) {
    const mismatch = await findMismatch(stored, options);
    if (!mismatch) return stored;
    if (!options.overwrite) {
      throw new JobMismatchError(
        layout.key,
        `Cannot reuse job '${layout.key}': ${mismatch}; use a new job key, or overwrite the stored job and its results with --overwrite`,
      );
    }
  }
  if (stored || options.overwrite) await deleteJobObjects(storage, layout);

  const digest = createHash("sha256");
  const shared = new Set<string>();
  let tasks = 0;
  let count = 0;
  const pool = new BoundedPool({
    concurrency: options.uploadConcurrency,
    maxWeight: options.uploadBytes,
  });
  try {
    for await (const input of serializeTasks(options)) {
      digest.update(input.value.bytes);
      for (const sha256 of input.shared) shared.add(sha256);
      tasks++;
      count += input.header.count;
      await pool.add(input.value.bytes.length, async () => {
        // The files first: a stored input means its files are there.
        for (const { path, entry } of input.files) await putFile(storage, entry, path);
        await storage.put(
          layout.input(input.header.task),
          recordBody(encodeRecord(input.header, input.value)),
        );
      });
      options.onUploaded?.(count);
    }
    await pool.drain();
  } catch (error) {
    await pool.drain().catch(() => {});
    // A stop keeps what was uploaded, for a rerun; a mistake removes it.
    if (!(error instanceof JobInterruptedError)) {
      await deletePrefix(storage, layout.inputsPrefix).catch(() => {});
    }
    throw error;
  }
  if (tasks === 0) throw new RangeError(`Cannot run job '${layout.key}': its inputs are empty`);
  options.onUploaded?.(count);

  await storage.put(layout.bundle, bundle.code, { contentType: "text/javascript" });
  const manifest: Manifest = {
    format: MANIFEST_FORMAT,
    key: layout.key,
    id: crypto.randomUUID(),
    createdAt: new Date().toISOString(),
    module: options.module,
    bundle: { sha256: bundle.sha256, size: bundle.code.length },
    inputs: { count, digest: digest.digest("hex") },
    tasks,
    itemsPerTask: options.itemsPerTask,
    shared: [...shared].sort(),
  };
  await options.beforeManifest?.();
  await writeJson(storage, layout.manifest, manifest);
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
  for await (const { header, value } of serializeTasks(options)) {
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

/**
 * Delete what a job is made of and what it computed, but not its lease or
 * its status: the master replacing it holds the one and rewrites the other.
 */
async function deleteJobObjects(storage: Storage, layout: JobLayout): Promise<void> {
  for (const prefix of [layout.inputsPrefix, layout.resultsPrefix, `${layout.prefix}logs/`]) {
    await deletePrefix(storage, prefix);
  }
  for (const key of [layout.manifest, layout.bundle]) await storage.delete(key);
  await deletePrefix(storage, `${layout.prefix}runs/`);
}
