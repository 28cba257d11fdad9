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
import { JobLayout } from "../format/layout.ts";
import { workerArgs } from "../worker/launch.ts";
import { WarmSession } from "./warm.ts";
import { collectOutput, storeLog } from "./worker_output.ts";
import { parsePermissions } from "../permissions.ts";
import { openStorage, type Storage } from "../storage/storage.ts";
import type { AttemptSpec, Backend, BackendEvent, BackendSession, JobContext } from "./backend.ts";
import { hostName } from "../host.ts";
import { QueueSession, type Started } from "./queue.ts";

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
      const session = new WarmSession(
        job,
        onEvent,
        { ...this.#options, ...workerFiles() },
        storage,
      );
      await session.warmUp();
      return session;
    }
    return new LocalSession(job, onEvent, this.#options, storage);
  }

  cleanup(_jobKey: string): Promise<string[]> {
    return Promise.resolve([]); // local workers never outlive the master
  }
}

/** Run each attempt as its own `deno run worker.ts` process. */
class LocalSession extends QueueSession {
  readonly #layout: JobLayout;

  constructor(
    job: JobContext,
    onEvent: (event: BackendEvent) => void,
    readonly options: Required<LocalBackendOptions>,
    storage: Storage,
  ) {
    super(job, onEvent, storage);
    this.#layout = new JobLayout(job.key);
  }

  protected start(spec: AttemptSpec): Started | undefined {
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
      this.report(spec, "unstartable", undefined, `cannot start deno: ${errorMessage(error)}`);
      return undefined;
    }
    let cancelled = false;
    let killTimer: ReturnType<typeof setTimeout> | undefined;
    const signal = (name: Deno.Signal) => {
      try {
        child.kill(name);
      } catch { /* already gone */ }
    };
    this.started(spec, hostName());
    const done = (async () => {
      const logPath = `${scratch}.log`;
      const { status, stderrTail } = await collectOutput(child, logPath);
      clearTimeout(killTimer);
      await storeLog(this.storage, this.#layout.log(spec.task, spec.attempt), logPath);
      await Deno.remove(scratch, { recursive: true }).catch(() => {});
      const said = stderrTail ? `: ${stderrTail}` : "";
      if (cancelled) this.ended(spec, "cancelled", status.code, "stopped by kubeface");
      else if (status.signal) {
        this.ended(
          spec,
          "killed",
          status.code,
          `killed by ${status.signal}${stderrTail ? `; last output: ${stderrTail}` : ""}`,
        );
      } else this.ended(spec, "exited", status.code, `exited with code ${status.code}${said}`);
    })();
    return {
      done,
      stop: () => {
        if (cancelled) return;
        cancelled = true;
        signal("SIGTERM");
        killTimer = setTimeout(() => signal("SIGKILL"), this.options.killGraceMs);
      },
    };
  }
}
