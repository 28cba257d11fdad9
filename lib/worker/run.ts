/**
 * What a worker does for one attempt, whatever started it (a local process,
 * a container, a pod): read the manifest, fetch and verify the bundle, read
 * the input, run the task, store a result record.
 *
 * @module
 */

import { join } from "node:path";
import { pathToFileURL as toFileUrl } from "node:url";
import { sha256Hex } from "../bundle.ts";
import type { ErrorRecord, InputHeader, Manifest, ResultHeader } from "../job/manifest.ts";
import { JobLayout } from "../job/layout.ts";
import {
  type EncodedValue,
  encodeRecord,
  encodeValue,
  readRecord,
  recordStream,
} from "../serialize.ts";
import { reviveShared } from "../shared.ts";
import { readBytes, readJson, type Storage } from "../storage/storage.ts";
import { checkTaskModule } from "../task_module.ts";
import { EXIT_OK, EXIT_TASK_ERROR } from "./exit_codes.ts";

/** One attempt to run. */
export interface WorkerOptions {
  /** Storage holding the job. */
  storage: Storage;
  /** Job key. */
  job: string;
  /** Task index. */
  task: number;
  /** Attempt id. */
  attempt: string;
  /** A private writable directory; the verified bundle is written there. */
  scratch: string;
}

/** Why a worker could not run a task; not the task's fault. */
export class WorkerSetupError extends Error {
  /** Build a setup error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "WorkerSetupError";
  }
}

/**
 * Run one attempt and store its result. Returns the exit code: `EXIT_OK`,
 * or `EXIT_TASK_ERROR` when the task threw.
 *
 * @throws {WorkerSetupError} The job's objects are missing or corrupt.
 * @throws {StorageError} Storage failed.
 */
export async function runWorker(options: WorkerOptions): Promise<number> {
  const { storage, job, task, attempt, scratch } = options;
  const layout = new JobLayout(job);
  const manifest = await readJson<Manifest>(storage, layout.manifest);
  if (!Number.isInteger(task) || task < 0 || task >= manifest.tasks) {
    throw new WorkerSetupError(
      `Cannot run task ${task} of job '${job}': the job has tasks 0 to ${manifest.tasks - 1}`,
    );
  }

  const code = await readBytes(storage, layout.bundle);
  const sha256 = await sha256Hex(code);
  if (sha256 !== manifest.bundle.sha256) {
    throw new WorkerSetupError(
      `Cannot run job '${job}': its bundle has sha256 ${sha256} but the manifest says ${manifest.bundle.sha256}; the stored bundle is corrupt, run the job again with --overwrite`,
    );
  }
  const bundlePath = join(scratch, `bundle-${sha256.slice(0, 16)}.js`);
  await Deno.writeFile(bundlePath, code);
  const exports = await import(toFileUrl(bundlePath).href) as Record<string, unknown>;
  const { task: fn } = checkTaskModule(exports, manifest.module, false);

  const { header, value: stored } = await readRecord<InputHeader>(
    await storage.get(layout.input(task)),
    `input of task ${task}`,
  );
  const input = reviveShared(stored);

  const started = new Date();
  let value: EncodedValue | undefined;
  let error: ErrorRecord | undefined;
  let item = 0;
  try {
    if (header.batch) {
      const results: unknown[] = [];
      for (const one of input as unknown[]) {
        results.push(await fn(one));
        item++;
      }
      value = encodeValue(results, `the results of task ${task}`);
    } else {
      value = encodeValue(await fn(input), `the result of task ${task}`);
    }
  } catch (thrown) {
    error = errorRecord(thrown, header.batch ? item : undefined);
  }
  const ended = new Date();

  const result: Omit<ResultHeader, "encoding" | "size"> = {
    kind: "result",
    status: error ? "error" : "ok",
    job,
    task,
    attempt,
    host: hostName(),
    startedAt: started.toISOString(),
    endedAt: ended.toISOString(),
    durationMs: ended.getTime() - started.getTime(),
    rssBytes: Deno.memoryUsage().rss,
    deno: Deno.version.deno,
    ...(error ? { error } : {}),
  };
  await storage.put(
    layout.result(task, attempt, error ? "error" : "ok"),
    recordStream(encodeRecord(result, value)),
  );
  return error ? EXIT_TASK_ERROR : EXIT_OK;
}

/** Turn anything thrown into a record with name, message and stack. */
export function errorRecord(thrown: unknown, item?: number): ErrorRecord {
  const record: ErrorRecord = thrown instanceof Error
    ? {
      name: thrown.name,
      message: thrown.message,
      stack: trimStack(thrown.stack ?? `${thrown.name}: ${thrown.message}`),
    }
    : { name: "Error", message: `non-error thrown: ${String(thrown)}`, stack: "" };
  return item === undefined ? record : { ...record, item };
}

/** Cut a stack where it enters kubeface's worker, leaving the user's frames. */
function trimStack(stack: string): string {
  const lines = stack.split("\n");
  const cut = lines.findIndex((line) => line.includes(import.meta.url));
  return (cut > 0 ? lines.slice(0, cut) : lines).join("\n");
}

function hostName(): string {
  try {
    return Deno.hostname();
  } catch {
    return "unknown";
  }
}
