/**
 * The public entry points: a {@linkcode Client} bound to a storage and a
 * backend, and the {@linkcode MapRun} a map call returns.
 *
 * @module
 */

import type { Backend, BackendName } from "./backends/backend.ts";
import { type BackendOptions, createBackend } from "./backends/select.ts";
import { defaultBackend, defaultStorage } from "./env.ts";
import { JobInterruptedError } from "./errors.ts";
import { type Entry, type JobInfo, runJob } from "./master/run.ts";
import type { JobRunner } from "./master/runner.ts";
import type { Progress } from "./master/state.ts";
import { type JobOptions, resolveJobOptions } from "./options.ts";
import type { Shared } from "./shared.ts";
import { shareValue } from "./shared_store.ts";
import { openStorage } from "./storage/storage.ts";
import { type InputSource, moduleUrl } from "./task_module.ts";

/** Where jobs run and where their data goes. */
export interface ClientOptions extends BackendOptions {
  /**
   * Storage root: a local directory (path or `file://` URL) or `gs://BUCKET/PREFIX`.
   *
   * @default {$KUBEFACE_STORAGE, else ~/.local/share/kubeface}
   */
  storage?: string;
  /**
   * Where tasks run: a backend name or a {@linkcode Backend} object.
   *
   * @default {$KUBEFACE_BACKEND, else "local"}
   */
  backend?: BackendName | Backend;
}

/** Options of one map call. */
export interface MapOptions<I = unknown> extends JobOptions {
  /**
   * The inputs to map over, instead of the module's `inputs` export.
   *
   * @default {the module's `inputs` export}
   */
  inputs?: InputSource<I>;
  /** Called once the job is prepared, with its key and status page URLs. */
  onStart?: (info: JobInfo) => void;
  /**
   * Yield results in input order (each once every earlier one is there).
   * With `false`, yield `{ index, input, value }` entries as tasks finish,
   * like Python's `as_completed`; a failed task then throws as in input
   * order (at once, or after every other task with `failFast: false`).
   *
   * @default {true}
   */
  ordered?: boolean;
}

/**
 * A map call in progress. Iterate it for the results in input order (or,
 * with `ordered: false`, for `{ index, input, value }` entries as tasks
 * finish); iteration starts the job, and stopping early stops it.
 *
 * @typeParam I The inputs.
 * @typeParam O The task's results.
 * @typeParam Y What iteration yields: `O`, or `Entry<I, O>` with `ordered: false`.
 *
 * @example Results with their inputs
 * ```ts
 * import assert from "node:assert/strict";
 * import { map } from "@kubeface/kubeface";
 *
 * const storage = await Deno.makeTempDir();
 * const run = map<number, number>("./examples/squares.ts", { storage, inputs: [7, 8] });
 * const entries = [];
 * for await (const entry of run.entries()) entries.push(entry);
 * assert.deepEqual(entries, [
 *   { index: 0, input: 7, value: 49 },
 *   { index: 1, input: 8, value: 64 },
 * ]);
 * assert.equal(run.progress()?.done, 2);
 * await Deno.remove(storage, { recursive: true });
 * ```
 */
export class MapRun<I = unknown, O = unknown, Y = O> implements AsyncIterable<Y> {
  /** The job key. */
  readonly job: string;
  /** Whether iteration follows input order (else: as tasks finish, as entries). */
  readonly ordered: boolean;
  readonly #start: (withInputs: boolean) => AsyncGenerator<Entry<I, O>>;
  #started = false;
  #runner: JobRunner | undefined;

  /** Used by {@linkcode Client.map}. */
  constructor(
    job: string,
    start: (withInputs: boolean, run: MapRun<I, O, Y>) => AsyncGenerator<Entry<I, O>>,
    ordered = true,
  ) {
    this.job = job;
    this.ordered = ordered;
    this.#start = (withInputs) => start(withInputs, this);
  }

  /** @internal Attach the runner so {@linkcode MapRun.cancel} can reach it. */
  attach(runner: JobRunner): void {
    this.#runner = runner;
  }

  /** Counts of tasks by state, once the job runs. */
  progress(): Progress | undefined {
    return this.#runner?.progress();
  }

  /** Results with their input index and input (read back from storage). */
  entries(): AsyncGenerator<Entry<I, O>> {
    return this.#begin(true);
  }

  /** Results in input order; entries as tasks finish with `ordered: false`. */
  async *[Symbol.asyncIterator](): AsyncGenerator<Y> {
    if (!this.ordered) {
      yield* this.#begin(true) as AsyncGenerator<unknown> as AsyncGenerator<Y>;
      return;
    }
    for await (const entry of this.#begin(false)) yield entry.value as unknown as Y;
  }

  /**
   * Stop the job. Iteration then throws `JobInterruptedError`. With
   * `stopRunning: false`, running attempts are left to finish where the
   * backend allows it (Kubernetes); a later run with the same key picks
   * their results up.
   */
  async cancel(options: { stopRunning?: boolean } = {}): Promise<void> {
    await this.#runner?.stop(new JobInterruptedError(this.job), options.stopRunning ?? true);
  }

  #begin(withInputs: boolean): AsyncGenerator<Entry<I, O>> {
    if (this.#started) {
      throw new Error(`Cannot iterate job '${this.job}' twice; call map() again to rerun it`);
    }
    this.#started = true;
    return this.#start(withInputs);
  }
}

/**
 * Runs maps with one storage and backend.
 *
 * @example Two maps with one storage and backend
 * ```ts
 * import assert from "node:assert/strict";
 * import { Client } from "@kubeface/kubeface";
 *
 * const storage = await Deno.makeTempDir();
 * const client = new Client({ storage, backend: "local" });
 * const squares = [];
 * for await (const y of client.map<number, number>("./examples/squares.ts", { inputs: [2, 3] })) {
 *   squares.push(y);
 * }
 * assert.deepEqual(squares, [4, 9]);
 * const again = client.map<number, number>("./examples/squares.ts", { inputs: [5], job: "five" });
 * for await (const y of again) assert.equal(y, 25);
 * assert.equal(again.job, "five");
 * await Deno.remove(storage, { recursive: true });
 * ```
 */
export class Client {
  /** The options this client was made with. */
  readonly options: Readonly<ClientOptions>;
  #backend: Promise<Backend> | undefined;

  /** Create a client; nothing is opened until a job runs. */
  constructor(options: ClientOptions = {}) {
    this.options = options;
  }

  /** Storage root this client uses. */
  get storage(): string {
    return this.options.storage ?? defaultStorage();
  }

  /**
   * Backend this client uses, created on first use.
   *
   * @throws {TypeError} The backend name or one of its options is malformed.
   */
  backend(): Promise<Backend> {
    const backend = this.options.backend ?? defaultBackend();
    this.#backend ??= typeof backend === "string"
      ? createBackend(backend, this.options)
      : Promise.resolve(backend);
    return this.#backend;
  }

  /**
   * Store a value once in this client's storage and return a small
   * reference to put in inputs; a task calls `await ref.get()` to load it
   * (once per worker process).
   *
   * @example A table stored once, used by every task
   * ```ts
   * import assert from "node:assert/strict";
   * import { Client } from "@kubeface/kubeface";
   *
   * const storage = await Deno.makeTempDir();
   * const client = new Client({ storage });
   * const table = await client.share(new Float64Array([0.5, 1.5, 2.5]));
   * // In a task module: export async function task({ i, table }) { return (await table.get())[i]; }
   * assert.deepEqual(await table.get(), new Float64Array([0.5, 1.5, 2.5]));
   * assert.equal(table.sha256.length, 64);
   * await Deno.remove(storage, { recursive: true });
   * ```
   *
   * @throws {TypeError} The value cannot be serialized.
   */
  async share<T>(value: T): Promise<Shared<T>> {
    await using storage = await openStorage(this.storage);
    return await shareValue(storage, value);
  }

  /**
   * Map a task module over inputs; with `ordered: false`, iteration yields
   * `{ index, input, value }` entries as tasks finish.
   *
   * @throws {TypeError} A path, option or permission flag is malformed.
   * @throws {RangeError} A number option is out of range.
   */
  map<I = unknown, O = unknown>(
    module: string | URL,
    options: MapOptions<I> & { ordered: false },
  ): MapRun<I, O, Entry<I, O>>;
  /**
   * Map a task module over inputs; iteration yields results in input order.
   *
   * @throws {TypeError} A path, option or permission flag is malformed.
   * @throws {RangeError} A number option is out of range.
   */
  map<I = unknown, O = unknown>(
    module: string | URL,
    options?: MapOptions<I> & { ordered?: true },
  ): MapRun<I, O>;
  /**
   * Map a task module over inputs; iteration yields results in input order,
   * or entries as tasks finish when `options.ordered` is false.
   *
   * @throws {TypeError} A path, option or permission flag is malformed.
   * @throws {RangeError} A number option is out of range.
   */
  map<I = unknown, O = unknown>(
    module: string | URL,
    options?: MapOptions<I>,
  ): MapRun<I, O, O | Entry<I, O>>;
  map<I = unknown, O = unknown>(
    module: string | URL,
    options: MapOptions<I> = {},
  ): MapRun<I, O, O | Entry<I, O>> {
    const url = moduleUrl(module);
    const resolved = resolveJobOptions(options, url);
    const storageUrl = this.storage;
    const getBackend = () => this.backend();
    const ordered = options.ordered ?? true;
    return new MapRun<I, O, O | Entry<I, O>>(resolved.job, async function* (withInputs, run) {
      const backend = await getBackend();
      await using storage = await openStorage(storageUrl);
      yield* runJob<I, O>({
        module: url,
        storage,
        backend,
        options: resolved,
        inputs: options.inputs,
        withInputs,
        ordered,
        onStart: options.onStart,
        onRunner: (runner) => run.attach(runner),
      });
    }, ordered);
  }
}
