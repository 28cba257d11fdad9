/**
 * The local backend: every attempt is its own `deno run worker.ts` process
 * on this machine, with only the permissions the user grants plus what the
 * worker needs to reach storage. It rehearses the cluster: same bundle, same
 * storage round trip, same result records. A worker's output is stored as
 * `jobs/<key>/logs/<task>/<attempt>.log` when it ends.
 *
 * @module
 */

import { errorMessage } from "../errors.ts";
import { hostName } from "../host.ts";
import { denoRunArgs, localWorkerFiles } from "../worker/launch.ts";
import type { AttemptSpec, Backend, BackendEvent, BackendSession, JobContext } from "./backend.ts";
import { QueueSession, type Started } from "./queue.ts";
import { WarmSession } from "./warm.ts";
import {
  collectOutput,
  describeExit,
  killGrace,
  spawnWorker,
  stopProcess,
  storeLog,
} from "./worker_process.ts";

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
   * @default {the job's grace period (`graceMs`) plus 5000, for the worker to store what the task left and exit}
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

type Resolved = Required<Omit<LocalBackendOptions, "killGraceMs">> & LocalBackendOptions;

/** Run attempts as local Deno processes. */
export class LocalBackend implements Backend {
  readonly name = "local";
  readonly #options: Resolved;

  /** Create the backend; see {@linkcode LocalBackendOptions} for the defaults. */
  constructor(options: LocalBackendOptions = {}) {
    this.#options = { deno: Deno.execPath(), warm: false, ...options };
  }

  async open(job: JobContext, onEvent: (event: BackendEvent) => void): Promise<BackendSession> {
    if (this.#options.warm) {
      const session = new WarmSession(job, onEvent, this.#options);
      await session.warmUp();
      return session;
    }
    return new LocalSession(job, onEvent, this.#options);
  }

  cleanup(_jobKey: string): Promise<string[]> {
    return Promise.resolve([]); // local workers never outlive the master
  }
}

/** Run each attempt as its own `deno run worker.ts` process. */
class LocalSession extends QueueSession {
  constructor(
    job: JobContext,
    onEvent: (event: BackendEvent) => void,
    readonly options: Resolved,
  ) {
    super(job, onEvent);
  }

  protected start(spec: AttemptSpec): Started | undefined {
    const scratch = Deno.makeTempDirSync({ prefix: "kubeface-worker-" });
    let child: Deno.ChildProcess;
    try {
      child = spawnWorker(
        this.options.deno,
        denoRunArgs({
          storageUrl: this.job.storage.url,
          job: this.job.key,
          scratch,
          permissions: this.job.permissions,
          mode: spec,
          graceMs: this.job.graceMs,
        }, localWorkerFiles()),
        this.job.env,
      );
    } catch (error) {
      Deno.removeSync(scratch, { recursive: true });
      this.report(spec, "unstartable", undefined, `cannot start deno: ${errorMessage(error)}`);
      return undefined;
    }
    let cancelled = false;
    let cancelKill = () => {};
    this.started(spec, hostName());
    const done = (async () => {
      const logPath = `${scratch}.log`;
      const { status, stderrTail } = await collectOutput(child, logPath);
      cancelKill();
      await storeLog(
        this.job.storage,
        this.job.layout.log(spec.task, spec.attempt),
        { path: logPath },
        status.success,
      );
      await Deno.remove(scratch, { recursive: true }).catch(() => {});
      if (cancelled) return this.ended(spec, "cancelled", status.code, "stopped by kubeface");
      const { reason, detail } = describeExit(status, stderrTail);
      this.ended(spec, reason, status.code, detail);
    })();
    return {
      done,
      stop: () => {
        if (cancelled) return;
        cancelled = true;
        cancelKill = stopProcess(child, killGrace(this.job, this.options.killGraceMs));
      },
    };
  }
}
