/**
 * Following a job another master runs (`--attach`): read-only, it yields the
 * job's results in input order as that master stores them, and ends when
 * the job does. It runs nothing, writes nothing and needs no backend.
 *
 * @module
 */

import { JobInterruptedError, TaskError, WorkerCrashError } from "../errors.ts";
import { readJson } from "../format/json.ts";
import type { JobLayout } from "../format/layout.ts";
import type { Manifest, ResultHeader } from "../format/manifest.ts";
import { readHeader } from "../format/records.ts";
import type { JobStatus } from "../format/status.ts";
import { NotFoundError } from "../errors.ts";
import { leaseFree, type LeaseRecord } from "./lease.ts";
import { readInputs, readResult } from "./results.ts";
import type { Entry, RunParams } from "./run.ts";

/** How often storage is looked at for new results. */
const POLL_MS = 1000;

/** The job's lease, if it has one that can be read. */
async function currentLease(
  params: RunParams,
  layout: JobLayout,
): Promise<LeaseRecord | undefined> {
  let latest: string | undefined;
  for await (const { key } of params.storage.list(layout.leasePrefix)) {
    if (layout.parseLease(key) !== undefined && (!latest || key > latest)) latest = key;
  }
  return latest
    ? await readJson<LeaseRecord>(params.storage, latest, "lease").catch(() => undefined)
    : undefined;
}

/** Whether a master holds the job now. */
async function running(params: RunParams, layout: JobLayout): Promise<boolean> {
  const lease = await currentLease(params, layout);
  return lease !== undefined && leaseFree(lease, Date.now()) === undefined;
}

async function pause(signal: AbortSignal, key: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, POLL_MS);
    const onAbort = () => {
      clearTimeout(timer);
      reject(new JobInterruptedError(key));
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** The stopped job's verdict on a task without a value: its error, if it failed. */
async function failure(
  params: RunParams,
  layout: JobLayout,
  manifest: Manifest,
  task: number,
): Promise<Error | undefined> {
  const status = await readJson<JobStatus>(params.storage, layout.statusJson, "status")
    .catch(() => undefined);
  const state = status?.tasks[task];
  if (state?.phase !== "failed") return undefined;
  const input = task * manifest.itemsPerTask;
  for await (const { key } of params.storage.list(layout.taskResults(task))) {
    const parsed = layout.parseResult(key);
    if (parsed?.kind !== "error") continue;
    const header = await readHeader<ResultHeader>(await params.storage.get(key), key);
    const error = header.error!;
    return new TaskError({
      task,
      input: input + (error.item ?? 0),
      attempt: parsed.attempt,
      name: error.name,
      message: error.message,
      stack: error.stack,
      host: header.host,
    });
  }
  return new WorkerCrashError({
    task,
    input,
    kind: "crash",
    attempts: state.attempts.length,
    detail: state.error ?? "it failed",
  });
}

/** The attempt that stored a value for each task, as far as storage says now. */
async function storedValues(params: RunParams, layout: JobLayout): Promise<Map<number, string>> {
  const found = new Map<number, string>();
  for await (const { key } of params.storage.list(layout.resultsPrefix)) {
    const parsed = layout.parseResult(key);
    if (parsed?.kind === "ok" && !found.has(parsed.task)) found.set(parsed.task, parsed.attempt);
  }
  return found;
}

/**
 * Yield the results of a job another master runs, in input order, until
 * every task has one.
 *
 * @throws {NotFoundError} No job with that key was ever started.
 * @throws {TaskError | WorkerCrashError} The running master failed a task.
 * @throws {Error} The job stopped (its master ended) before it was done.
 */
export async function* followJob<I, O>(
  params: RunParams & { layout: JobLayout },
): AsyncGenerator<Entry<I, O>> {
  const { storage, layout, signal } = params;
  const key = layout.key;
  let manifest: Manifest | undefined;
  while (!manifest) {
    if (await storage.stat(layout.manifest)) {
      manifest = await readJson<Manifest>(storage, layout.manifest, "manifest");
    } else if (await running(params, layout)) {
      await pause(signal, key); // still being prepared
    } else {
      throw new NotFoundError(storage.url + layout.manifest);
    }
  }
  params.onStart?.({
    job: key,
    storage: storage.url,
    inputs: manifest.inputs.count,
    tasks: manifest.tasks,
    reused: 0,
    status: { json: storage.url + layout.statusJson, html: storage.url + layout.statusHtml },
  });
  let stored = new Map<number, string>();
  for (let t = 0; t < manifest.tasks; t++) {
    while (!stored.has(t)) {
      const live = await running(params, layout);
      stored = await storedValues(params, layout);
      if (stored.has(t)) break;
      const failed = await failure(params, layout, manifest, t);
      if (failed) throw failed;
      if (!live) {
        throw new Error(
          `Cannot follow job '${key}': no master runs it and task ${t} has no result; run it again without --attach to resume it`,
        );
      }
      await pause(signal, key);
    }
    const values = await readResult<O>(storage, layout, manifest, t, stored.get(t)!);
    const inputs = params.withInputs ? await readInputs<I>(storage, layout, manifest, t) : [];
    for (let i = 0; i < values.length; i++) {
      yield { index: t * manifest.itemsPerTask + i, input: inputs[i] as I, value: values[i] as O };
    }
  }
}
