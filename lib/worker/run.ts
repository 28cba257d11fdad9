/**
 * What a worker does for each attempt, whatever started it (a local process,
 * a container, a pod): read the manifest, fetch and verify the bundle, read
 * the input, run the task in a thread with only the task's permissions,
 * store a result record.
 *
 * @module
 */

import { join } from "node:path";
import { pathToFileURL as toFileUrl } from "node:url";
import { sha256Hex } from "../sha256.ts";
import type { ErrorRecord, InputHeader, Manifest, ResultHeader } from "../format/manifest.ts";
import { JobLayout } from "../format/layout.ts";
import { mergePermissions, type PermissionSet } from "../permissions.ts";
import { objectName, readJson } from "../format/json.ts";
import { encodeRecord, type Encoding, readRawRecord, recordBody } from "../format/records.ts";
import { CorruptObjectError } from "../errors.ts";
import { fetchFile, storeFile } from "../file_store.ts";
import type { FileEntry } from "../files.ts";
import { readShared } from "../shared_store.ts";
import { readBytes, type Storage } from "../storage/storage.ts";
import { EXIT_INFRASTRUCTURE, EXIT_OK, EXIT_STOPPED, EXIT_TASK_ERROR } from "./exit_codes.ts";
import type { AttemptSpec, RunMap } from "../format/attempt.ts";
import { TaskThread, THREAD_CODE } from "./thread.ts";
import { hostName } from "../host.ts";
import { AttemptCheckpoints } from "./checkpoints.ts";
import { AttemptStop, DEFAULT_GRACE_MS } from "./stopping.ts";

/** How an attempt ended, as the worker reports it. */
export interface AttemptOutcome {
  /** The worker's exit code. */
  code: number;
}

/** Options of {@linkcode JobWorker.run}. */
export interface RunOptions {
  /**
   * The task's first attempt in this session (the warm pool knows): no
   * other attempt's result can exist, so none is looked for.
   *
   * @default {false}
   */
  first?: boolean;
}

/** What a worker process is started for: one job, in one storage. */
export interface JobWorkerOptions {
  /** Storage holding the job. */
  storage: Storage;
  /** Job key. */
  job: string;
  /** A private writable directory; the verified bundle is written there. */
  scratch: string;
  /** What the task may do; the worker itself may do more (reach storage). */
  permissions: PermissionSet;
  /**
   * Time a stopped attempt's task gets to checkpoint and return, in milliseconds.
   *
   * @default {25000}
   */
  graceMs?: number;
  /**
   * Writes a line to the attempt's log (a checkpoint that could not be used).
   *
   * @default {nothing}
   */
  warn?: (message: string) => void;
}

/** The attempt crashed in a way the task caused but did not throw (it ended its thread). */
export class AttemptCrashError extends Error {
  /** Build the error; the message is said as it is, without a stack. */
  constructor(message: string) {
    super(message);
    this.name = "AttemptCrashError";
  }
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
 * Runs attempts of one job's tasks, one after another: the manifest and
 * the verified bundle are read once, and one task thread serves them all.
 */
export class JobWorker {
  readonly #options: JobWorkerOptions;
  readonly #layout: JobLayout;
  readonly #thread: TaskThread;
  #setup: Promise<{ manifest: Manifest; bundle: string }> | undefined;
  /** The stop of the attempt that runs now. */
  #stop: AttemptStop | undefined;

  /**
   * A worker for `options.job`; nothing is read until the first attempt, but
   * the task thread starts at once, to boot while the job's objects are read.
   * Call {@linkcode close} when done.
   */
  constructor(options: JobWorkerOptions) {
    this.#options = options;
    this.#layout = new JobLayout(options.job);
    this.#thread = new TaskThread(
      mergePermissions(options.permissions, {
        read: [options.scratch, ...THREAD_CODE],
        write: [options.scratch],
      }),
      (sha256) => this.#shared(sha256),
    );
    this.#thread.start();
  }

  /**
   * Run one attempt and store its result. Returns the exit code (`EXIT_OK`,
   * or `EXIT_TASK_ERROR` when the task threw; `EXIT_STOPPED` when it was
   * stopped with {@linkcode JobWorker.stop} and did not return in its grace
   * period; `EXIT_INFRASTRUCTURE` when it failed because storage failed under
   * its checkpoints). A task that already has a result (another attempt won) is
   * not run again: `EXIT_OK` at once; the check is skipped for a first
   * attempt.
   *
   * @throws {WorkerSetupError} The job's objects are missing or corrupt.
   * @throws {StorageError} Storage failed.
   */
  async run(task: number, attempt: string, options: RunOptions = {}): Promise<AttemptOutcome> {
    const stop = new AttemptStop(attempt, this.#options.graceMs ?? DEFAULT_GRACE_MS);
    this.#stop = stop;
    try {
      return await this.#run(task, attempt, options, stop);
    } finally {
      stop.dispose();
      if (this.#stop === stop) this.#stop = undefined;
    }
  }

  /**
   * Stop the attempt that runs now (or `attempt`, if it is the one): its
   * task's signal fires, and it gets the grace period to checkpoint and
   * return. A task that returns in time still stores its result; otherwise
   * `run` resolves with `EXIT_STOPPED`.
   */
  stop(reason: string, attempt?: string): void {
    const stop = this.#stop;
    if (stop && (attempt === undefined || stop.attempt === attempt)) stop.request(reason);
  }

  async #run(
    task: number,
    attempt: string,
    options: RunOptions,
    stop: AttemptStop,
  ): Promise<AttemptOutcome> {
    const { storage, job } = this.#options;
    const layout = this.#layout;
    this.#setup ??= this.#prepare();
    const { manifest, bundle } = await this.#setup.catch((error) => {
      this.#setup = undefined;
      throw error;
    });
    if (!Number.isInteger(task) || task < 0 || task >= manifest.tasks) {
      throw new WorkerSetupError(
        `Cannot run task ${task} of job '${job}': the job has tasks 0 to ${manifest.tasks - 1}`,
      );
    }
    if (!options.first && await this.#done(task)) return { code: EXIT_OK }; // another attempt won
    const inputKey = layout.input(task);
    const inputName = objectName(storage, inputKey, `input of task ${task}`);
    const { header, payload } = await readRawRecord<InputHeader>(
      await storage.get(inputKey),
      inputName,
    );
    if (header.task !== task) {
      throw new CorruptObjectError(inputName, `it says it is the input of task ${header.task}`);
    }
    if (stop.requested) return { code: EXIT_STOPPED };
    const warn = this.#options.warn ?? (() => {});
    const checkpoints = new AttemptCheckpoints({
      storage,
      layout,
      task,
      attempt,
      inputs: { first: header.first, count: header.count },
      warn,
    });
    const fetched = join(this.#options.scratch, "files");
    try {
      const inputs: string[] = [];
      for (const entry of header.files ?? []) {
        inputs.push(await fetchFile(storage, entry, fetched));
      }
      const thread = this.#thread;
      const finished = thread.run({
        type: "run",
        bundle,
        module: manifest.module,
        task,
        batch: header.batch,
        encoding: header.encoding,
        payload,
        attempt,
        first: header.first,
        scratch: this.#options.scratch,
        ...(inputs.length ? { files: inputs } : {}),
      }, {
        checkpoint: (request) => checkpoints.checkpoint(request),
        restore: (request) => checkpoints.restore(request),
        stopping: (listens) => stop.stopping(listens),
        warn,
      });
      stop.running((reason) => thread.stop(reason));
      const ended = await Promise.race([finished, stop.killed]);
      if (ended === "killed") {
        thread.close(); // the task did not end in time; the next attempt gets a new thread
        await checkpoints.settled();
        return { code: EXIT_STOPPED };
      }
      const done = ended;
      await checkpoints.settled();
      if (done.crash) throw new AttemptCrashError(done.crash);
      if (done.error && (stop.requested || checkpoints.failure)) {
        // Stopped, or storage failed under its checkpoints: not the task's fault.
        if (!stop.requested) {
          warn(`task ${task} could not use its checkpoints: ${checkpoints.failure!.message}`);
        }
        return { code: stop.requested ? EXIT_STOPPED : EXIT_INFRASTRUCTURE };
      }
      const stored = done.error ? { entries: [] } : await this.#storeFiles(done.files ?? []);
      const error = done.error ?? ("error" in stored ? stored.error : undefined);
      const files = "entries" in stored ? stored.entries : [];
      const result: Omit<ResultHeader, "encoding" | "size" | "crc32c"> = {
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
        ...(manifest.id ? { manifest: manifest.id } : {}),
        ...(error ? { error } : {}),
        ...(!error && files.length ? { files } : {}),
      };
      const body = recordBody(encodeRecord(result, error ? undefined : done.result));
      await storage.put(layout.result(task, attempt, error ? "error" : "ok"), body);
      if (!error) await checkpoints.removeAll();
      return { code: error ? EXIT_TASK_ERROR : EXIT_OK };
    } finally {
      await Deno.remove(fetched, { recursive: true }).catch(() => {});
    }
  }

  /**
   * Store the files a task returned, moving them out of its scratch
   * directory; a file elsewhere is the task's error (a task must not hand
   * the worker's own files, such as credentials, to storage).
   */
  async #storeFiles(
    paths: string[],
  ): Promise<{ entries: FileEntry[] } | { error: ErrorRecord }> {
    const entries: FileEntry[] = [];
    const scratch = await Deno.realPath(this.#options.scratch);
    for (const path of paths) {
      const real = await Deno.realPath(path).catch(() => path);
      if (!real.startsWith(`${scratch}/`)) {
        return {
          error: {
            name: "Error",
            message:
              `Cannot return the file '${path}': it is not in the task's scratch directory; write result files there`,
            stack: "",
          },
        };
      }
      entries.push(await storeFile(this.#options.storage, this.#layout, real));
      await Deno.remove(real).catch(() => {});
    }
    return { entries };
  }

  /**
   * The task and attempt that index `index` of a batch run stands for, from
   * the run's index map (`jobs/<key>/runs/<name>.json`).
   *
   * @throws {WorkerSetupError} The map is missing or has no such index.
   */
  async indexed(run: string, index: number): Promise<AttemptSpec> {
    const map = await readJson<RunMap>(this.#options.storage, this.#layout.run(run), "run map");
    const spec = Number.isInteger(index) ? map.attempts[index] : undefined;
    if (!spec) {
      throw new WorkerSetupError(
        `Cannot find index ${index} in run '${run}' of job '${this.#options.job}': it has ${map.attempts.length} indexes (is JOB_COMPLETION_INDEX set?)`,
      );
    }
    return spec;
  }

  /**
   * Read the manifest, fetch and check the bundle, and import it in the task
   * thread, ahead of the first attempt (warm workers).
   *
   * @throws {WorkerSetupError} The job's objects are missing or corrupt.
   */
  async warmUp(): Promise<void> {
    this.#setup ??= this.#prepare();
    const { manifest, bundle } = await this.#setup;
    const done = await this.#thread.load({ type: "load", bundle, module: manifest.module });
    if (done.error) {
      throw new WorkerSetupError(`Cannot load the task module: ${done.error.message}`);
    }
  }

  /**
   * One of the job's shared values, for the task thread: only those the
   * job's inputs refer to (format 1 jobs did not list them), from the
   * worker's own storage.
   */
  async #shared(sha256: string): Promise<{ encoding: Encoding; payload: Uint8Array }> {
    this.#setup ??= this.#prepare();
    const { manifest } = await this.#setup;
    if (!/^[0-9a-f]{64}$/.test(sha256) || (manifest.shared && !manifest.shared.includes(sha256))) {
      throw new Error(
        `Cannot load shared value '${sha256}': the inputs of job '${this.#options.job}' refer to no such value`,
      );
    }
    return await readShared(this.#options.storage, sha256);
  }

  /** Whether some attempt of the task already stored a result. */
  async #done(task: number): Promise<boolean> {
    for await (const { key } of this.#options.storage.list(this.#layout.taskResults(task))) {
      if (key.endsWith(".ok")) return true;
    }
    return false;
  }

  /** Stop the task thread. */
  close(): void {
    this.#thread.close();
  }

  async #prepare(): Promise<{ manifest: Manifest; bundle: string }> {
    const { storage, job, scratch } = this.#options;
    const manifest = await readJson<Manifest>(storage, this.#layout.manifest, "manifest");
    if (manifest.key !== job) {
      throw new CorruptObjectError(
        objectName(storage, this.#layout.manifest, "manifest"),
        `it is the manifest of job '${manifest.key}'`,
      );
    }
    const code = await readBytes(storage, this.#layout.bundle);
    const sha256 = await sha256Hex(code);
    if (sha256 !== manifest.bundle.sha256) {
      throw new WorkerSetupError(
        `Cannot run job '${job}': its bundle has sha256 ${sha256} but the manifest says ${manifest.bundle.sha256}; the stored bundle is corrupt, run the job again with --overwrite`,
      );
    }
    const path = join(scratch, `bundle-${sha256.slice(0, 16)}.js`);
    await Deno.writeFile(path, code);
    return { manifest, bundle: toFileUrl(path).href };
  }
}
