/**
 * The local backend's warm mode: `parallelism` long-lived worker processes
 * (`worker.ts --serve`), each running one attempt after another. Every
 * attempt still goes through storage and writes the same result record; the
 * manifest, the verified bundle and the task thread are reused, so tasks of
 * one job share a process and the module's state, but nothing else.
 *
 * A worker that dies is replaced; a cancelled attempt costs its process.
 *
 * @module
 */

import { errorMessage } from "../errors.ts";
import { JobLayout } from "../job/layout.ts";
import type { Storage } from "../storage/storage.ts";
import { workerArgs } from "../worker/command.ts";
import { type AttemptEnded, CONTROL_PREFIX } from "../worker/protocol.ts";
import type { AttemptSpec, BackendEvent, ExitReason, JobContext } from "./backend.ts";
import { hostName, QueueSession, type Started } from "./queue.ts";

/** Most bytes of one attempt's output kept for its log (the end is kept). */
const LOG_BYTES = 8 * 1024 * 1024;

/** The attempt a worker runs now. */
interface Busy {
  spec: AttemptSpec;
  log: string[];
  logBytes: number;
  cancelled: boolean;
  /** Resolves the attempt's `done` once its end is reported. */
  settle: () => void;
}

interface WarmWorker {
  child: Deno.ChildProcess;
  stdin: WritableStreamDefaultWriter<Uint8Array>;
  scratch: string;
  busy?: Busy;
  /** Last lines of standard error, to explain a crash. */
  tail: string;
  killTimer?: ReturnType<typeof setTimeout>;
  exited: Promise<void>;
  /** Settles once the worker has loaded the job (or has died). */
  ready: Promise<void>;
  markReady: () => void;
}

/** What a warm session needs from the local backend. */
export interface WarmSettings {
  deno: string;
  killGraceMs: number;
  worker: string;
  config: string;
}

/** A job's session on a pool of warm local workers. */
export class WarmSession extends QueueSession {
  readonly #workers = new Set<WarmWorker>();
  readonly #layout: JobLayout;

  /** Start a session; workers start as attempts arrive. */
  constructor(
    job: JobContext,
    onEvent: (event: BackendEvent) => void,
    readonly settings: WarmSettings,
    storage: Storage,
  ) {
    super(job, onEvent, storage);
    this.#layout = new JobLayout(job.key);
  }

  /**
   * Start the workers a job needs (up to `parallelism`) and wait until each
   * has loaded the job, so the first tasks do not pay for it.
   */
  async warmUp(): Promise<void> {
    const wanted = Math.min(this.job.parallelism, this.job.tasks);
    try {
      while (this.#workers.size < wanted) this.#spawn();
    } catch {
      return; // reported when attempts start
    }
    await Promise.all([...this.#workers].map((w) => w.ready));
  }

  protected start(spec: AttemptSpec): Started | undefined {
    let worker = [...this.#workers].find((w) => !w.busy);
    if (!worker) {
      try {
        worker = this.#spawn();
      } catch (error) {
        this.report(spec, "unstartable", undefined, `cannot start deno: ${errorMessage(error)}`);
        return undefined;
      }
    }
    let settle = () => {};
    const done = new Promise<void>((resolve) => (settle = resolve));
    const busy: Busy = { spec, log: [], logBytes: 0, cancelled: false, settle };
    worker.busy = busy;
    const line = JSON.stringify({ task: spec.task, attempt: spec.attempt }) + "\n";
    worker.stdin.write(new TextEncoder().encode(line)).catch(() => {
      // The process is gone; its exit reports the attempt.
    });
    this.started(spec, hostName());
    const busyWorker = worker;
    return {
      done,
      stop: () => {
        if (busy.cancelled || busyWorker.busy !== busy) return;
        busy.cancelled = true;
        this.#kill(busyWorker);
      },
    };
  }

  protected override async shutdown(): Promise<void> {
    for (const worker of this.#workers) {
      await worker.stdin.close().catch(() => {});
      worker.killTimer = setTimeout(() => this.#kill(worker), this.settings.killGraceMs);
    }
    await Promise.all([...this.#workers].map((w) => w.exited));
  }

  #spawn(): WarmWorker {
    const scratch = Deno.makeTempDirSync({ prefix: "kubeface-warm-" });
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(this.settings.deno, {
        args: workerArgs({
          worker: this.settings.worker,
          config: this.settings.config,
          storageUrl: this.job.storageUrl,
          job: this.job.key,
          scratch,
          permissions: this.job.permissions,
        }),
        env: { NO_COLOR: "1", ...this.job.env },
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
    } catch (error) {
      Deno.removeSync(scratch, { recursive: true });
      throw error;
    }
    let markReady = () => {};
    const worker: WarmWorker = {
      child,
      stdin: child.stdin.getWriter(),
      scratch,
      tail: "",
      exited: Promise.resolve(),
      ready: new Promise((resolve) => (markReady = resolve)),
      markReady: () => markReady(),
    };
    worker.exited = this.#watch(worker).finally(() => worker.markReady());
    this.#workers.add(worker);
    return worker;
  }

  /** SIGTERM, then SIGKILL after the grace time. */
  #kill(worker: WarmWorker): void {
    const signal = (name: Deno.Signal) => {
      try {
        worker.child.kill(name);
      } catch { /* gone */ }
    };
    signal("SIGTERM");
    clearTimeout(worker.killTimer);
    worker.killTimer = setTimeout(() => signal("SIGKILL"), this.settings.killGraceMs);
  }

  #append(worker: WarmWorker, text: string): void {
    const busy = worker.busy;
    if (!busy) return;
    busy.log.push(text);
    busy.logBytes += text.length;
    while (busy.logBytes > LOG_BYTES && busy.log.length > 1) {
      busy.logBytes -= busy.log.shift()!.length;
    }
  }

  async #readStdout(worker: WarmWorker): Promise<void> {
    let pending = "";
    for await (const chunk of worker.child.stdout.pipeThrough(new TextDecoderStream())) {
      pending += chunk;
      for (let end = pending.indexOf("\n"); end >= 0; end = pending.indexOf("\n")) {
        const line = pending.slice(0, end + 1);
        pending = pending.slice(end + 1);
        if (line.startsWith(CONTROL_PREFIX)) {
          const ended = JSON.parse(line.slice(CONTROL_PREFIX.length)) as AttemptEnded;
          if ("ready" in ended) {
            worker.markReady();
            continue;
          }
          const busy = worker.busy;
          if (!busy || busy.spec.attempt !== ended.attempt) continue;
          worker.busy = undefined;
          const detail = ended.code === 0
            ? "exited with code 0"
            : `exited with code ${ended.code}: ${worker.tail.trim()}`;
          worker.tail = "";
          await this.#end(busy, "exited", ended.code, detail);
        } else {
          this.#append(worker, line);
        }
      }
    }
    if (pending) this.#append(worker, pending);
  }

  async #readStderr(worker: WarmWorker): Promise<void> {
    for await (const chunk of worker.child.stderr.pipeThrough(new TextDecoderStream())) {
      this.#append(worker, chunk);
      worker.tail = (worker.tail + chunk).slice(-2000);
    }
  }

  async #watch(worker: WarmWorker): Promise<void> {
    const [status] = await Promise.all([
      worker.child.status,
      this.#readStdout(worker).catch(() => {}),
      this.#readStderr(worker).catch(() => {}),
    ]);
    clearTimeout(worker.killTimer);
    this.#workers.delete(worker);
    await Deno.remove(worker.scratch, { recursive: true }).catch(() => {});
    const busy = worker.busy;
    if (!busy) return;
    worker.busy = undefined;
    const tail = worker.tail.trim();
    if (busy.cancelled) await this.#end(busy, "cancelled", status.code, "stopped by kubeface");
    else if (status.signal) {
      await this.#end(
        busy,
        "killed",
        status.code,
        `killed by ${status.signal}${tail ? `; last output: ${tail}` : ""}`,
      );
    } else {
      await this.#end(
        busy,
        "exited",
        status.code,
        `exited with code ${status.code}${tail ? `: ${tail}` : ""}`,
      );
    }
  }

  /** Store the attempt's log, report its end, and settle it. */
  async #end(
    busy: Busy,
    reason: ExitReason,
    code: number | undefined,
    detail: string,
  ): Promise<void> {
    try {
      // Most tasks print nothing: store no empty logs.
      if (busy.log.length > 0) {
        await this.storage.put(
          this.#layout.log(busy.spec.task, busy.spec.attempt),
          new TextEncoder().encode(busy.log.join("")),
          { contentType: "text/plain" },
        );
      }
    } catch {
      // Logs are a convenience; a failed upload must not fail the attempt.
    }
    this.ended(busy.spec, reason, code, detail);
    busy.settle();
  }
}
