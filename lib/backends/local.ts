/**
 * The local backend: every attempt is its own `deno run worker.ts` process
 * on this machine, with only the permissions the user grants plus what the
 * worker needs to reach storage. It rehearses the cluster: same bundle, same
 * storage round trip, same result records. A worker's output is stored as
 * `jobs/<key>/logs/<task>/<attempt>.log` when it ends.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { errorMessage } from "../errors.ts";
import { JobLayout } from "../job/layout.ts";
import { workerArgs } from "../worker/command.ts";
import { WarmSession } from "./warm.ts";
import { collectOutput, storeLog } from "./worker_output.ts";
import { parsePermissions } from "../permissions.ts";
import { openStorage, type Storage } from "../storage/storage.ts";
import type {
  AttemptSpec,
  Backend,
  BackendEvent,
  BackendSession,
  ExitReason,
  JobContext,
} from "./backend.ts";

/** Options of the local backend. */
export interface LocalBackendOptions {
  /**
   * The Deno executable that runs workers.
   *
   * @default {Deno.execPath()}
   */
  deno?: string;
  /**
   * Time between SIGTERM and SIGKILL when a worker is stopped, in milliseconds.
   *
   * @default {2000}
   */
  killGraceMs?: number;
  /**
   * Keep `parallelism` worker processes alive and run one attempt after
   * another in each, instead of a fresh process per attempt. Much less
   * overhead per task; the tasks of a job then share a process, its scratch
   * directory and the task module's state. Process-per-attempt is what
   * rehearses a pod.
   *
   * @default {false}
   */
  warm?: boolean;
}

const ROOT = new URL("../../", import.meta.url);

/** Paths of the files a local worker runs: `worker.ts` and the project's `deno.json`. */
export function workerFiles(): { worker: string; config: string } {
  return {
    worker: fileURLToPath(new URL("worker.ts", ROOT)),
    config: fileURLToPath(new URL("deno.json", ROOT)),
  };
}

/** Run attempts as local Deno processes. */
export class LocalBackend implements Backend {
  readonly name = "local";
  readonly #options: Required<LocalBackendOptions>;

  /** Create the backend; see {@linkcode LocalBackendOptions} for the defaults. */
  constructor(options: LocalBackendOptions = {}) {
    this.#options = { deno: Deno.execPath(), killGraceMs: 2000, warm: false, ...options };
  }

  async open(job: JobContext, onEvent: (event: BackendEvent) => void): Promise<BackendSession> {
    parsePermissions(job.permissions); // fail before anything starts
    const storage = await openStorage(job.storageUrl);
    if (this.#options.warm) {
      return new WarmSession(job, onEvent, { ...this.#options, ...workerFiles() }, storage);
    }
    return new LocalSession(job, onEvent, this.#options, storage);
  }

  cleanup(_jobKey: string): Promise<string[]> {
    return Promise.resolve([]); // local workers never outlive the master
  }
}

interface Running {
  spec: AttemptSpec;
  child: Deno.ChildProcess;
  cancelled: boolean;
  killTimer?: ReturnType<typeof setTimeout>;
  done: Promise<void>;
}

class LocalSession implements BackendSession {
  readonly #queue: AttemptSpec[] = [];
  readonly #running = new Map<string, Running>();
  readonly #layout: JobLayout;
  #closed = false;

  constructor(
    readonly job: JobContext,
    readonly onEvent: (event: BackendEvent) => void,
    readonly options: Required<LocalBackendOptions>,
    readonly storage: Storage,
  ) {
    this.#layout = new JobLayout(job.key);
  }

  submit(attempts: readonly AttemptSpec[]): Promise<void> {
    if (this.#closed) {
      return Promise.reject(new Error("Cannot submit: the local session is closed"));
    }
    this.#queue.push(...attempts);
    this.#pump();
    return Promise.resolve();
  }

  async cancel(attempts: readonly string[]): Promise<void> {
    const ids = new Set(attempts);
    for (let i = this.#queue.length - 1; i >= 0; i--) {
      const spec = this.#queue[i]!;
      if (ids.has(spec.attempt)) {
        this.#queue.splice(i, 1);
        this.#exited(spec, "cancelled", undefined, "cancelled before it started");
      }
    }
    const waits: Promise<void>[] = [];
    for (const id of ids) {
      const running = this.#running.get(id);
      if (!running) continue;
      this.#stop(running);
      waits.push(running.done);
    }
    await Promise.all(waits);
  }

  async close(_options?: { stopRunning?: boolean }): Promise<void> {
    this.#closed = true;
    // Local workers cannot outlive the master: always stop them.
    await this.cancel([...this.#queue.map((spec) => spec.attempt), ...this.#running.keys()]);
    await this.storage[Symbol.asyncDispose]();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close({ stopRunning: true });
  }

  #pump(): void {
    while (!this.#closed && this.#running.size < this.job.parallelism && this.#queue.length > 0) {
      this.#start(this.#queue.shift()!);
    }
  }

  #stop(running: Running): void {
    if (running.cancelled) return;
    running.cancelled = true;
    try {
      running.child.kill("SIGTERM");
    } catch { /* already gone */ }
    running.killTimer = setTimeout(() => {
      try {
        running.child.kill("SIGKILL");
      } catch { /* already gone */ }
    }, this.options.killGraceMs);
  }

  #start(spec: AttemptSpec): void {
    const scratch = Deno.makeTempDirSync({ prefix: "kubeface-worker-" });
    const { worker, config } = workerFiles();
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(this.options.deno, {
        args: workerArgs({
          worker,
          config,
          storageUrl: this.job.storageUrl,
          job: this.job.key,
          run: { task: spec.task, attempt: spec.attempt },
          scratch,
          permissions: this.job.permissions,
        }),
        env: { NO_COLOR: "1", ...this.job.env },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
    } catch (error) {
      Deno.removeSync(scratch, { recursive: true });
      this.#exited(spec, "unstartable", undefined, `cannot start deno: ${errorMessage(error)}`);
      queueMicrotask(() => this.#pump());
      return;
    }
    const running: Running = { spec, child, cancelled: false, done: Promise.resolve() };
    running.done = this.#watch(running, scratch);
    this.#running.set(spec.attempt, running);
    this.onEvent({
      type: "started",
      task: spec.task,
      attempt: spec.attempt,
      at: new Date(),
      host: host(),
    });
  }

  async #watch(running: Running, scratch: string): Promise<void> {
    const { spec, child } = running;
    const logPath = `${scratch}.log`;
    const { status, stderrTail: stderr } = await collectOutput(child, logPath);
    clearTimeout(running.killTimer);
    await storeLog(this.storage, this.#layout.log(spec.task, spec.attempt), logPath);
    await Deno.remove(scratch, { recursive: true }).catch(() => {});
    this.#running.delete(spec.attempt);

    if (running.cancelled) {
      this.#exited(spec, "cancelled", status.code, "stopped by kubeface");
    } else if (status.signal) {
      this.#exited(
        spec,
        "killed",
        status.code,
        `killed by ${status.signal}${stderr ? `; last output: ${stderr}` : ""}`,
      );
    } else {
      this.#exited(
        spec,
        "exited",
        status.code,
        `exited with code ${status.code}${stderr ? `: ${stderr}` : ""}`,
      );
    }
    this.#pump();
  }

  #exited(spec: AttemptSpec, reason: ExitReason, exitCode: number | undefined, detail: string) {
    this.onEvent({
      type: "exited",
      task: spec.task,
      attempt: spec.attempt,
      at: new Date(),
      reason,
      exitCode,
      detail,
    });
  }
}

function host(): string {
  try {
    return Deno.hostname();
  } catch {
    return "localhost";
  }
}
