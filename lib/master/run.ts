/**
 * One map call from start to end: load and bundle the module, prepare the
 * job in storage, run it on a backend, and yield results in input order as
 * soon as each prefix is complete.
 *
 * @module
 */

import type { Backend } from "../backends/backend.ts";
import { bundleModule } from "../bundle.ts";
import { JobInterruptedError } from "../errors.ts";
import type { ResolvedJobOptions } from "../options.ts";
import { readRecord } from "../format/records.ts";
import type { Storage } from "../storage/storage.ts";
import type { JobFacts } from "../format/status.ts";
import { buildStatus, writeStatus } from "../status/status.ts";
import { type InputSource, loadTaskModule } from "../task_module.ts";
import { JobLayout } from "../format/layout.ts";
import type { InputHeader, Manifest, ResultHeader } from "../format/manifest.ts";
import { prepareJob } from "./prepare.ts";
import { JobRunner } from "./runner.ts";
import { unorderedResults } from "./unordered.ts";
import type { TaskState } from "./state.ts";

/** Most bytes of results read ahead of the consumer. */
const READ_AHEAD_BYTES = 64 * 1024 * 1024;
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

/** Everything one run needs. */
export interface RunParams {
  module: URL;
  storage: Storage;
  backend: Backend;
  options: ResolvedJobOptions;
  inputs?: InputSource;
  /** Read inputs back from storage alongside results. */
  withInputs: boolean;
  /**
   * Yield in input order; when false, as tasks finish.
   *
   * @default {true}
   */
  ordered?: boolean;
  onStart?: (info: JobInfo) => void;
  /** Receives the runner as soon as it exists, so a caller can stop it. */
  onRunner?: (runner: JobRunner) => void;
}

/** Run a job and yield its results in input order. */
export async function* runJob<I, O>(params: RunParams): AsyncGenerator<Entry<I, O>> {
  const { storage, backend, options } = params;
  const layout = new JobLayout(options.job);
  const module = await loadTaskModule(params.module, params.inputs === undefined);
  const bundle = await bundleModule(params.module);
  const manifest = await prepareJob({
    storage,
    layout,
    module: params.module.href,
    bundle,
    inputs: params.inputs ?? module.inputs!,
    itemsPerTask: options.itemsPerTask,
    overwrite: options.overwrite,
    uploadConcurrency: options.uploadConcurrency,
    uploadBytes: UPLOAD_BYTES,
  });

  const facts: JobFacts = {
    job: layout.key,
    backend: backend.name,
    storage: storage.url,
    module: params.module.href,
    parallelism: options.parallelism,
    itemsPerTask: manifest.itemsPerTask,
    inputs: manifest.inputs.count,
  };
  const runner = new JobRunner({
    storage,
    layout,
    manifest,
    options,
    writeStatus: (r) => writeStatus(storage, layout, buildStatus(r.snapshot(), facts, layout)),
  });
  params.onRunner?.(runner);
  const onAbort = () => void runner.stop(new JobInterruptedError(layout.key));
  options.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    await runner.loadStoredResults();
    if (options.signal?.aborted) throw new JobInterruptedError(layout.key);
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
      status: { json: storage.url + layout.statusJson, html: storage.url + layout.statusHtml },
    });
    await runner.start(session);
    if (params.ordered ?? true) {
      yield* orderedResults<I, O>(runner, storage, layout, manifest, params.withInputs);
    } else {
      const batch = manifest.itemsPerTask > 1;
      yield* unorderedResults<I, O>(
        runner,
        (task) => readTask<I, O>(storage, layout, task, batch, params.withInputs),
        manifest.itemsPerTask,
      );
    }
    await runner.finished();
  } finally {
    options.signal?.removeEventListener("abort", onAbort);
    if (runner.phase === "running") await runner.stop(new JobInterruptedError(layout.key));
    await runner.close();
  }
}

/** Yield results task by task, reading a bounded number ahead. */
async function* orderedResults<I, O>(
  runner: JobRunner,
  storage: Storage,
  layout: JobLayout,
  manifest: Manifest,
  withInputs: boolean,
): AsyncGenerator<Entry<I, O>> {
  const reads = new Map<number, Promise<{ values: O[]; inputs: I[] }>>();
  let aheadBytes = 0;
  const read = (t: number) => {
    let promise = reads.get(t);
    if (!promise) {
      promise = readTask<I, O>(
        storage,
        layout,
        runner.tasks[t]!,
        manifest.itemsPerTask > 1,
        withInputs,
      );
      promise.catch(() => {}); // awaited later; avoid an unhandled rejection meanwhile
      reads.set(t, promise);
      aheadBytes += runner.tasks[t]!.resultBytes ?? 0;
    }
    return promise;
  };
  try {
    for (let t = 0; t < manifest.tasks; t++) {
      const state = await runner.settled(t);
      if (state.phase === "failed") {
        await runner.finished().catch(() => {});
        throw state.error;
      }
      for (let u = t + 1; u < manifest.tasks && u <= t + READ_AHEAD; u++) {
        const next = runner.tasks[u]!;
        if (next.phase !== "done" || aheadBytes > READ_AHEAD_BYTES) break;
        read(u);
      }
      const { values, inputs } = await read(t);
      reads.delete(t);
      aheadBytes -= state.resultBytes ?? 0;
      for (let i = 0; i < values.length; i++) {
        yield {
          index: t * manifest.itemsPerTask + i,
          input: inputs[i] as I,
          value: values[i] as O,
        };
      }
    }
  } finally {
    reads.clear();
  }
}

async function readTask<I, O>(
  storage: Storage,
  layout: JobLayout,
  task: TaskState,
  batch: boolean,
  withInputs: boolean,
): Promise<{ values: O[]; inputs: I[] }> {
  const { value } = await readRecord<ResultHeader>(
    await storage.get(layout.result(task.index, task.winner!, "ok")),
    `result of task ${task.index}`,
  );
  const input = withInputs
    ? (await readRecord<InputHeader>(
      await storage.get(layout.input(task.index)),
      `input of task ${task.index}`,
    )).value
    : undefined;
  return {
    values: batch ? (value as O[]) : [value as O],
    inputs: !withInputs ? [] : batch ? (input as I[]) : [input as I],
  };
}
