/**
 * The public entry points: a {@linkcode Client} bound to a storage and a
 * backend, and the {@linkcode MapRun} a map call returns.
 *
 * @module
 */

import type { Backend, BackendName } from "./backends/backend.ts";
import { type BackendOptions, createBackend } from "./backends/select.ts";
import { clientOptionsFromArgs, type FromArgsOptions } from "./cli/args.ts";
import { defaultBackend, defaultStorage } from "./env.ts";
import { JobInterruptedError } from "./errors.ts";
import { loggedBackend, loggedStorage, type Logger } from "./log.ts";
import { type Entry, type JobInfo, type JobStartInfo, runJob } from "./master/run.ts";
import type { JobRunner } from "./master/runner.ts";
import type { Progress } from "./master/state.ts";
import { checkJobPrefix, type JobOptions, jobPrefixKey, resolveJobOptions } from "./options.ts";
import type { Shared } from "./shared.ts";
import { shareValue } from "./shared_store.ts";
import { openStorage, type Storage } from "./storage/storage.ts";
import { checkModuleExists, type InputSource, moduleUrl } from "./task_module.ts";

/**
 * Where jobs run and where their data goes, and the job options every map
 * of the client uses unless the map gives its own. A client with a `job`
 * key runs one map; with `jobPrefix`, each map gets a key of its own.
 */
export interface ClientOptions extends BackendOptions, JobOptions {
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
  /**
   * Key prefix of this client's maps: the n-th `map()` of the client
   * (counting from 0) gets the key `<prefix>-<n in three digits>`, e.g.
   * `nightly-000`, `nightly-001`, so running the same job file again resumes
   * each map. A map's own `job` wins.
   *
   * @default {none: each map gets a generated key}
   */
  jobPrefix?: string;
  /**
   * Gets one line per step: bundling, each storage call, each backend call
   * and event (`--verbose` prints them).
   *
   * @default {nothing is logged}
   */
  logger?: Logger;
}

/** Options of one map call. */
export interface MapOptions<I = unknown> extends JobOptions {
  /**
   * The inputs to map over, instead of the module's `inputs` export.
   *
   * @default {the module's `inputs` export}
   */
  inputs?: InputSource<I>;
  /** Called with the job's key and status page URLs before its inputs are uploaded. */
  onPrepare?: (info: JobStartInfo) => void;
  /** Called once the job is prepared, with its key, counts and status page URLs. */
  onStart?: (info: JobInfo) => void;
  /**
   * Hears what went wrong and was mended, e.g. a damaged result computed
   * again.
   *
   * @default {nothing}
   */
  onWarning?: (message: string) => void;
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
 * const dir = await Deno.makeTempDir();
 * const module = `${dir}/squares.ts`;
 * await Deno.writeTextFile(module, "export const task = (x: number) => x * x;\n");
 * const run = map<number, number>(module, { storage: `${dir}/runs`, inputs: [7, 8] });
 * const entries = [];
 * for await (const entry of run.entries()) entries.push(entry);
 * assert.deepEqual(entries, [
 *   { index: 0, input: 7, value: 49 },
 *   { index: 1, input: 8, value: 64 },
 * ]);
 * assert.equal(run.progress()?.done, 2);
 * await Deno.remove(dir, { recursive: true });
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
  readonly #stop = new AbortController();

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

  /** @internal Aborted by {@linkcode MapRun.cancel}, at any stage of the job. */
  get signal(): AbortSignal {
    return this.#stop.signal;
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
    if (this.#runner) {
      await this.#runner.stop(new JobInterruptedError(this.job), options.stopRunning ?? true);
    }
    this.#stop.abort(new JobInterruptedError(this.job)); // loading, bundling or uploading
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
 * const dir = await Deno.makeTempDir();
 * const module = `${dir}/squares.ts`;
 * await Deno.writeTextFile(module, "export const task = (x: number) => x * x;\n");
 * const client = new Client({ storage: `${dir}/runs`, backend: "local", parallelism: 2 });
 * const squares = [];
 * for await (const y of client.map<number, number>(module, { inputs: [2, 3] })) {
 *   squares.push(y);
 * }
 * assert.deepEqual(squares, [4, 9]);
 * const again = client.map<number, number>(module, { inputs: [5], job: "five" });
 * for await (const y of again) assert.equal(y, 25);
 * assert.equal(again.job, "five");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class Client {
  /** The options this client was made with. */
  readonly options: Readonly<ClientOptions>;
  #backend: Promise<Backend> | undefined;
  /** How many maps this client started, which numbers the keys of `jobPrefix`. */
  #maps = 0;

  /**
   * Create a client; nothing is opened until a job runs.
   *
   * @throws {TypeError} `jobPrefix` cannot start a job key.
   */
  constructor(options: ClientOptions = {}) {
    if (options.jobPrefix !== undefined) checkJobPrefix(options.jobPrefix);
    this.options = options;
  }

  /**
   * A client configured from kubeface's command-line flags, for a job file:
   * `Client.fromArgs(Deno.args)`. It takes every flag of `kubeface map`
   * that says where and how jobs run: `--storage`, `--backend` and the
   * backend's flags, `--parallelism`, retries, speculation, Deno permission
   * flags for the tasks (`-A`, `--allow-net`, …), `--job` or
   * `--job-prefix`, `--config` and `--verbose`.
   *
   * Like a command, it prints kubeface's flags and their defaults and exits
   * on `--help`, and prints the mistake and exits with status 2 on an
   * unknown flag or a bad value. A job file with flags of its own uses
   * {@linkcode parseKubefaceArgs} instead.
   *
   * @example A job file's command line
   * ```ts
   * import assert from "node:assert/strict";
   * import { Client } from "@kubeface/kubeface";
   *
   * const client = Client.fromArgs([
   *   "--storage",
   *   "/tmp/runs",
   *   "--parallelism",
   *   "8",
   *   "--job-prefix",
   *   "nightly",
   *   "--allow-net",
   * ]);
   * assert.equal(client.storage, "/tmp/runs");
   * assert.equal(client.options.parallelism, 8);
   * assert.equal(client.options.jobPrefix, "nightly");
   * assert.deepEqual(client.options.permissions, ["--allow-net"]);
   * ```
   *
   * @param args The command line, usually `Deno.args`.
   * @param options How `--help` introduces the job file.
   * @returns A client with those options.
   */
  static fromArgs(args: readonly string[], options: FromArgsOptions = {}): Client {
    return new Client(clientOptionsFromArgs(args, options));
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
    const logger = this.options.logger;
    this.#backend ??=
      (typeof backend === "string"
        ? createBackend(backend, this.options)
        : Promise.resolve(backend)).then((b) => logger ? loggedBackend(b, logger) : b);
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
    await using storage = await this.#openStorage();
    return await shareValue(storage, value);
  }

  /** Open this client's storage, logging its calls when there is a logger. */
  async #openStorage(): Promise<Storage> {
    const { logger } = this.options;
    const started = performance.now();
    const storage = await openStorage(this.storage);
    if (!logger) return storage;
    logger(
      "storage",
      `opened ${storage.url} (${Math.round(performance.now() - started)} ms)`,
    );
    return loggedStorage(storage, logger);
  }

  /** The key of this client's map number `index`, when the client chooses it. */
  #jobKey(index: number): string | undefined {
    const { job, jobPrefix } = this.options;
    if (job !== undefined) {
      if (index > 0) {
        throw new TypeError(
          `Cannot run a second map with the client's job key '${job}': a key names one map; give each map its own job, or key them with jobPrefix (--job-prefix)`,
        );
      }
      return job;
    }
    return jobPrefix === undefined ? undefined : jobPrefixKey(jobPrefix, index);
  }

  /**
   * Map a task module over inputs; options not given here are the client's. With
   * `ordered: false`, iteration yields `{ index, input, value }` entries as tasks finish.
   *
   * @param module Path or URL of the task module. A relative path is
   * resolved against the working directory; name a module next to the
   * calling file with `new URL("./m.ts", import.meta.url)`.
   * @param options Options of this map; they win over the client's.
   * @throws {TypeError} A path, option or permission flag is malformed, or
   * the client has a `job` key and already ran a map.
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
    const index = this.#maps++;
    const {
      storage: _storage,
      backend: _backend,
      local: _local,
      container: _container,
      kubernetes: _kubernetes,
      jobPrefix: _jobPrefix,
      logger,
      job: _job,
      ...defaults
    } = this.options;
    const given = Object.fromEntries(
      Object.entries(options).filter(([, value]) => value !== undefined),
    ) as MapOptions<I>;
    const resolved = resolveJobOptions(
      { ...defaults, ...given, job: options.job ?? this.#jobKey(index) },
      url,
    );
    const getBackend = () => this.backend();
    const getStorage = () => this.#openStorage();
    const ordered = options.ordered ?? true;
    return new MapRun<I, O, O | Entry<I, O>>(resolved.job, async function* (withInputs, run) {
      checkModuleExists(module, url);
      const backend = await getBackend();
      await using storage = await getStorage();
      yield* runJob<I, O>({
        module: url,
        storage,
        backend,
        options: resolved,
        inputs: options.inputs,
        withInputs,
        signal: resolved.signal ? AbortSignal.any([resolved.signal, run.signal]) : run.signal,
        onPrepare: options.onPrepare,
        ordered,
        onStart: options.onStart,
        onWarning: options.onWarning,
        onRunner: (runner) => run.attach(runner),
        logger,
      });
    }, ordered);
  }
}
