/**
 * One map call from start to end: load and bundle the module, prepare the
 * job in storage, run it on a backend, and yield results in input order as
 * soon as each prefix is complete.
 *
 * @module
 */

import type { Backend } from "../backends/backend.ts";
import { BundleError, bundleModule } from "../bundle.ts";
import {
  CorruptObjectError,
  JobBusyError,
  JobInterruptedError,
  TaskModuleError,
} from "../errors.ts";
import { type Logger, SILENT } from "../log.ts";
import { JobLayout } from "../format/layout.ts";
import { MemoryRelease } from "../memory.ts";
import type { Manifest } from "../format/manifest.ts";
import type { JobFacts } from "../format/status.ts";
import type { ResolvedJobOptions } from "../options.ts";
import { buildStatus, preparingStatus, writeStatus } from "../status/status.ts";
import type { Storage } from "../storage/storage.ts";
import { guardInputs, type InputSource, loadBundle } from "../task_module.ts";
import { deleteJob } from "../catalog.ts";
import { followJob } from "./follow.ts";
import { acquireLease } from "./lease.ts";
import { prepareJob } from "./prepare.ts";
import { readInputs, readResult, type TaskValues } from "./results.ts";
import { JobRunner } from "./runner.ts";
import { progressOf, type TaskState } from "./state.ts";
import { unorderedResults } from "./unordered.ts";

/** Most bytes of results read ahead of the consumer. */
const READ_AHEAD_BYTES = 8 * 1024 * 1024;
/** Most results read ahead of the consumer. */
const READ_AHEAD = 8;
/** Most bytes of serialized inputs held while uploading. */
const UPLOAD_BYTES = 256 * 1024 * 1024;

/** What is known about a job once it is prepared. */
export interface JobInfo {
  /** Job key. */
  job: string;
  /** Storage root URL. */
  storage: string;
  /** Number of inputs. */
  inputs: number;
  /** Number of tasks. */
  tasks: number;
  /** Tasks whose results were reused from an earlier run. */
  reused: number;
  /** URLs of the status pages. */
  status: { json: string; html: string };
}

/** One result, with where it came from. */
export interface Entry<I, O> {
  /** Input index. */
  index: number;
  /** The input, read back from storage. */
  input: I;
  /** The task's result for it. */
  value: O;
}

/** Where a job's status can be followed, as soon as its key is known. */
export interface JobStartInfo {
  /** Job key. */
  job: string;
  /** Storage root URL. */
  storage: string;
  /** URLs of the status pages. */
  status: { json: string; html: string };
}

/** Everything one run needs. */
export interface RunParams {
  module: URL;
  storage: Storage;
  backend: Backend;
  options: ResolvedJobOptions;
  inputs?: InputSource;
  /** Read inputs back from storage alongside results. */
  withInputs: boolean;
  /** Stops the job at any stage (Ctrl-C, `cancel()`, `options.signal`). */
  signal: AbortSignal;
  /** Called before the inputs are uploaded. */
  onPrepare?: (info: JobStartInfo) => void;
  /**
   * Yield in input order; when false, as tasks finish.
   *
   * @default {true}
   */
  ordered?: boolean;
  onStart?: (info: JobInfo) => void;
  /** Hears what went wrong and was mended (a damaged result computed again). */
  onWarning?: (message: string) => void;
  /** Receives the runner as soon as it exists, so a caller can stop it. */
  onRunner?: (runner: JobRunner) => void;
  /** Gets a line per step. */
  logger?: Logger;
}

/** Most times one task's result is computed again because it could not be used. */
const MAX_REOPENS = 3;

/** Settle with `promise`, or reject as soon as `signal` aborts. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal, key: string): Promise<T> {
  if (signal.aborted) return Promise.reject(new JobInterruptedError(key));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new JobInterruptedError(key));
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/** Run a job and yield its results in input order. */
export async function* runJob<I, O>(params: RunParams): AsyncGenerator<Entry<I, O>> {
  const { storage, backend, options, signal, logger = SILENT } = params;
  const layout = new JobLayout(options.job);
  const href = params.module.href;
  if (options.attach) {
    yield* followJob<I, O>({ ...params, layout });
    return;
  }
  backend.checkStorage?.(storage.url); // before anything is made
  let bundle;
  try {
    bundle = await abortable(
      bundleModule(params.module, { config: options.config, logger, signal }),
      signal,
      layout.key,
    );
  } catch (error) {
    if (!(error instanceof BundleError)) throw error;
    throw new TaskModuleError(
      { module: href, stage: "bundle", message: error.summary, userStack: error.output },
      { cause: error },
    );
  }
  // The master loads the bundle, as the workers do: the module's imports resolve as when it was bundled.
  const module = await abortable(
    loadBundle(bundle, href, params.inputs === undefined),
    signal,
    layout.key,
  );
  logger("master", `loaded ${href}; preparing job ${layout.key} in ${storage.url}`);
  const lease = await acquireLease(storage, layout, { takeOver: options.overwrite });
  const startedAt = Date.now();
  const facts: JobFacts = {
    job: layout.key,
    backend: backend.name,
    storage: storage.url,
    module: href,
    parallelism: options.parallelism,
    itemsPerTask: options.itemsPerTask,
    inputs: 0,
  };
  const links = { json: storage.url + layout.statusJson, html: storage.url + layout.statusHtml };
  let runner: JobRunner | undefined;
  let taken: Error | undefined;
  lease.keep(() => {
    const now = new Date().toISOString();
    taken = new JobBusyError(
      layout.key,
      lease.taker ?? { host: "unknown", pid: 0, since: now, renewedAt: now },
    );
    // The new master attaches to what still runs, where the backend keeps it.
    void runner?.stop(taken, false);
  });
  try {
    params.onPrepare?.({ job: layout.key, storage: storage.url, status: links });
    let manifest: Manifest;
    // A new job is listed (as preparing) while its inputs are uploaded.
    const isNew = !(await storage.stat(layout.manifest));
    const preparing = async (phase: "preparing" | "interrupted", error?: Error) => {
      if (!isNew) return;
      const at = { startedAt, now: Date.now(), phase };
      await writeStatus(storage, layout, preparingStatus(facts, layout, at, error));
    };
    await preparing("preparing");
    let lastWrite = Date.now();
    try {
      manifest = await prepareJob({
        storage,
        layout,
        module: href,
        bundle,
        inputs: guardInputs(params.inputs ?? module.inputs!, href, params.inputs === undefined),
        itemsPerTask: options.itemsPerTask,
        overwrite: options.overwrite,
        uploadConcurrency: options.uploadConcurrency,
        uploadBytes: UPLOAD_BYTES,
        maxInputs: options.maxInputs,
        signal,
        beforeManifest: () => lease.check(),
        onUploaded: (inputs) => {
          facts.inputs = inputs;
          options.onProgress?.({
            ...progressOf(layout.key, "preparing", [], startedAt),
            uploaded: inputs,
          });
          if (Date.now() - lastWrite >= options.statusIntervalMs) {
            lastWrite = Date.now();
            void preparing("preparing").catch(() => {}); // also says the master lives
          }
        },
      });
    } catch (error) {
      if (error instanceof JobInterruptedError) {
        // Stopped: listed as interrupted; a rerun uploads the inputs again.
        await preparing("interrupted", error).catch(() => {});
      } else if (isNew) {
        // A mistake in the inputs: leave nothing behind.
        await lease.release();
        await deleteJob(storage, layout.key).catch(() => {});
      }
      throw error;
    }
    facts.inputs = manifest.inputs.count;
    facts.itemsPerTask = manifest.itemsPerTask;
    runner = new JobRunner({
      storage,
      layout,
      manifest,
      options,
      writeStatus: (r) => writeStatus(storage, layout, buildStatus(r.snapshot(), facts, layout)),
    });
    logger(
      "master",
      `job ${layout.key}: ${manifest.tasks} task(s) for ${manifest.inputs.count} input(s)`,
    );
    params.onRunner?.(runner);
    if (taken) throw taken;
    const onAbort = () => void runner?.stop(new JobInterruptedError(layout.key));
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      await runner.loadStoredResults();
      if (signal.aborted) throw new JobInterruptedError(layout.key);
      const session = await backend.open({
        key: layout.key,
        storage,
        layout,
        permissions: options.permissions,
        parallelism: options.parallelism,
        env: options.env,
        timeoutMs: options.timeoutMs || undefined,
        graceMs: options.graceMs,
        tasks: manifest.tasks,
        maxRetries: options.maxRetries,
      }, runner.onEvent);
      params.onStart?.({
        job: layout.key,
        storage: storage.url,
        inputs: manifest.inputs.count,
        tasks: manifest.tasks,
        reused: runner.tasks.filter((t) => t.reused).length,
        status: links,
      });
      await runner.start(session);
      const results = new TaskResults<I, O>(runner, params, layout, manifest, () => lease.check());
      if (params.ordered ?? true) yield* orderedResults<I, O>(runner, manifest, results);
      else {yield* unorderedResults<I, O>(runner, (task) =>
          results.read(task), manifest.itemsPerTask);}
      await runner.finished();
    } finally {
      signal.removeEventListener("abort", onAbort);
      if (runner.phase === "running") await runner.stop(new JobInterruptedError(layout.key));
      await runner.close();
    }
  } finally {
    await lease.release();
  }
}

/**
 * Reads the values of done tasks, checked. A damaged result counts as
 * missing: it is deleted, with a warning that names it, and its task is
 * computed again (at most {@linkcode MAX_REOPENS} times).
 */
class TaskResults<I, O> {
  readonly #reopened = new Map<number, number>();
  readonly #memory = new MemoryRelease();

  constructor(
    readonly runner: JobRunner,
    readonly params: RunParams,
    readonly layout: JobLayout,
    readonly manifest: Manifest,
    /** Throws when this master lost the job: only its master may delete what an attempt stored. */
    readonly holding: () => Promise<void>,
  ) {}

  /** The task's values, or `undefined` when its result was damaged and it runs again. */
  async read(state: TaskState): Promise<TaskValues<I, O> | undefined> {
    const { storage, withInputs } = this.params;
    const { layout, manifest } = this;
    const t = state.index;
    const attempt = state.winner!;
    try {
      const values = await readResult<O>(storage, layout, manifest, t, attempt);
      const inputs = withInputs ? await readInputs<I>(storage, layout, manifest, t) : [];
      this.#memory.passed(state.resultBytes ?? 0);
      return { values, inputs };
    } catch (error) {
      const reopened = this.#reopened.get(t) ?? 0;
      const damaged = error instanceof CorruptObjectError && error.object.startsWith("result of");
      if (!damaged || reopened >= MAX_REOPENS) throw error;
      this.#reopened.set(t, reopened + 1);
      await this.holding();
      this.params.onWarning?.(`${error.message}; computing task ${t} again`);
      await storage.delete(layout.result(t, attempt, "ok"));
      await this.runner.reopen(t);
      return undefined;
    }
  }
}

/** Yield results task by task, reading a bounded number ahead. */
async function* orderedResults<I, O>(
  runner: JobRunner,
  manifest: Manifest,
  results: TaskResults<I, O>,
): AsyncGenerator<Entry<I, O>> {
  const reads = new Map<number, Promise<TaskValues<I, O> | undefined>>();
  let aheadBytes = 0;
  const read = (state: TaskState) => {
    let promise = reads.get(state.index);
    if (!promise) {
      promise = results.read(state);
      promise.catch(() => {}); // awaited later; avoid an unhandled rejection meanwhile
      reads.set(state.index, promise);
      aheadBytes += state.resultBytes ?? 0;
    }
    return promise;
  };
  try {
    for (let t = 0; t < manifest.tasks; t++) {
      let values: TaskValues<I, O> | undefined;
      while (values === undefined) {
        const state = await runner.settled(t);
        if (state.phase === "failed") {
          await runner.finished().catch(() => {});
          throw state.error;
        }
        for (let u = t + 1; u < manifest.tasks && u <= t + READ_AHEAD; u++) {
          const next = runner.tasks[u]!;
          if (next.phase !== "done" || aheadBytes > READ_AHEAD_BYTES) break;
          read(next);
        }
        try {
          values = await read(state); // undefined: damaged, and running again
        } finally {
          reads.delete(t);
          aheadBytes -= state.resultBytes ?? 0;
        }
      }
      for (let i = 0; i < values.values.length; i++) {
        yield {
          index: t * manifest.itemsPerTask + i,
          input: values.inputs[i] as I,
          value: values.values[i] as O,
        };
      }
    }
  } finally {
    reads.clear();
  }
}
