/**
 * What a worker does for one attempt, whatever started it (a local process,
 * a container, a pod): read the manifest, fetch and verify the bundle, read
 * the input, run the task, store a result record.
 *
 * @module
 */

import { join } from "node:path";
import { fileURLToPath as fromFileUrl, pathToFileURL as toFileUrl } from "node:url";
import { sha256Hex } from "../bundle.ts";
import type { InputHeader, Manifest, ResultHeader } from "../job/manifest.ts";
import { JobLayout } from "../job/layout.ts";
import { mergePermissions, PERMISSION_NAMES, type PermissionSet } from "../permissions.ts";
import { encodeRecord, readRawRecord, recordStream } from "../serialize.ts";
import { readShared } from "../shared.ts";
import { readBytes, readJson, type Storage } from "../storage/storage.ts";
import { EXIT_OK, EXIT_TASK_ERROR } from "./exit_codes.ts";
import type { DoneMessage, RunMessage, SharedReply, ThreadMessage } from "./protocol.ts";

/** One attempt to run. */
export interface WorkerRunOptions {
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
  /** What the task may do; the worker itself may do more (reach storage). */
  permissions: PermissionSet;
}

const THREAD = new URL("./task_thread.ts", import.meta.url);
/** Where the thread's own modules are read from, when they are local files. */
const CODE = THREAD.protocol === "file:" ? [fromFileUrl(new URL("../", THREAD))] : [];

/** Deno's permission object for a thread, from a permission set. */
function threadPermissions(set: PermissionSet): Deno.PermissionOptionsObject {
  const out: Record<string, boolean | string[]> = {};
  for (const name of PERMISSION_NAMES) out[name] = set[name] ?? false;
  return out as Deno.PermissionOptionsObject;
}

/**
 * Run the task in a thread with only `permissions`, answering its requests
 * for shared values, until it reports that the task ended.
 */
function runInThread(message: RunMessage, permissions: PermissionSet): Promise<DoneMessage> {
  const thread = new Worker(THREAD, {
    type: "module",
    deno: { permissions: threadPermissions(permissions) },
  });
  return new Promise<DoneMessage>((resolve, reject) => {
    thread.onmessage = (event: MessageEvent<ThreadMessage>) => {
      const data = event.data;
      if (data.type === "done") {
        thread.terminate();
        resolve(data);
        return;
      }
      readShared(data.storage, data.sha256).then(
        ({ encoding, payload }) =>
          thread.postMessage(
            { type: "shared", id: data.id, encoding, payload } satisfies SharedReply,
            [
              payload.buffer as ArrayBuffer,
            ],
          ),
        (error) =>
          thread.postMessage(
            {
              type: "shared",
              id: data.id,
              error: { name: "Error", message: String(error?.message ?? error), stack: "" },
            } satisfies SharedReply,
          ),
      );
    };
    thread.onerror = (event) => {
      event.preventDefault();
      thread.terminate();
      const now = Date.now();
      resolve({
        type: "done",
        startedAt: now,
        endedAt: now,
        error: {
          name: "Error",
          message: event.message,
          stack: `${event.message}\n    at ${event.filename}:${event.lineno}:${event.colno}`,
        },
      });
    };
    thread.onmessageerror = () => {
      thread.terminate();
      reject(new WorkerSetupError("Cannot read the task thread's message"));
    };
    thread.postMessage(message, [message.payload.buffer as ArrayBuffer]);
  });
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
export async function runWorker(options: WorkerRunOptions): Promise<number> {
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

  const { header, payload } = await readRawRecord<InputHeader>(
    await storage.get(layout.input(task)),
    `input of task ${task}`,
  );
  const done = await runInThread(
    {
      type: "run",
      bundle: toFileUrl(bundlePath).href,
      module: manifest.module,
      task,
      batch: header.batch,
      encoding: header.encoding,
      payload,
    },
    mergePermissions(options.permissions, { read: [scratch, ...CODE], write: [scratch] }),
  );
  const value = done.result && { encoding: done.result.encoding, bytes: done.result.bytes };
  const error = done.error;

  const result: Omit<ResultHeader, "encoding" | "size"> = {
    kind: "result",
    status: error ? "error" : "ok",
    job,
    task,
    attempt,
    host: hostName(),
    startedAt: new Date(done.startedAt).toISOString(),
    endedAt: new Date(done.endedAt).toISOString(),
    durationMs: done.endedAt - done.startedAt,
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

function hostName(): string {
  try {
    return Deno.hostname();
  } catch {
    return "unknown";
  }
}
