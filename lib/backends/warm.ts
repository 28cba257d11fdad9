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
import type {
  AttemptSpec,
  BackendEvent,
  BackendSession,
  ExitReason,
  JobContext,
} from "./backend.ts";

/** Most bytes of one attempt's output kept for its log (the end is kept). */
const LOG_BYTES = 8 * 1024 * 1024;

interface Busy {
  spec: AttemptSpec;
  log: string[];
  logBytes: number;
  cancelled: boolean;
}

interface WarmWorker {
  child: Deno.ChildProcess;
  stdin: WritableStreamDefaultWriter<Uint8Array>;
  scratch: string;
  busy?: Busy;
  /** Last lines of standard error, to explain a crash. */
  tail: string;
  killTimer?: ReturnType<typeof setTimeout>;
  done: Promise<void>;
}

/** What a warm session needs from the local backend. */
export interface WarmSettings {
  deno: string;
  killGraceMs: number;
  worker: string;
  config: string;
}

/** A job's session on a pool of warm local workers. */
export class WarmSession implements BackendSession {
  readonly #queue: AttemptSpec[] = [];
  readonly #workers = new Set<WarmWorker>();
  readonly #layout: JobLayout;
  #closed = false;

  /** Start a session; workers start as attempts arrive. */
  constructor(
    readonly job: JobContext,
    readonly onEvent: (event: BackendEvent) => void,
    readonly settings: WarmSettings,
    readonly storage: Storage,
  ) {
    this.#layout = new JobLayout(job.key);
  }

  submit(attempts: readonly AttemptSpec[]): Promise<void> {
    if (this.#closed) return Promise.reject(new Error("Cannot submit: the warm session is closed"));
    this.#queue.push(...attempts);
    this.#pump();
    return Promise.resolve();
  }

  async cancel(attempts: readonly string[]): Promise<void> {
    const ids = new Set(attempts);
    for (let i = this.#queue.length - 1; i >= 0; i--) {
      const spec = this.#queue[i]!;
      if (!ids.has(spec.attempt)) continue;
      this.#queue.splice(i, 1);
      this.#exited(spec, "cancelled", undefined, "cancelled before it started");
    }
    const waits: Promise<void>[] = [];
    for (const worker of this.#workers) {
      if (!worker.busy || !ids.has(worker.busy.spec.attempt)) continue;
      worker.busy.cancelled = true;
      this.#kill(worker);
      waits.push(worker.done);
    }
    await Promise.all(waits);
  }

  async close(_options?: { stopRunning?: boolean }): Promise<void> {
    this.#closed = true;
    const busy = [...this.#workers].flatMap((w) => (w.busy ? [w.busy.spec.attempt] : []));
    await this.cancel([...this.#queue.map((s) => s.attempt), ...busy]);
    for (const worker of this.#workers) {
      await worker.stdin.close().catch(() => {});
      worker.killTimer = setTimeout(() => this.#kill(worker), this.settings.killGraceMs);
    }
    await Promise.all([...this.#workers].map((w) => w.done));
    await this.storage[Symbol.asyncDispose]();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #pump(): void {
    while (!this.#closed && this.#queue.length > 0) {
      let idle = [...this.#workers].find((w) => !w.busy);
      if (!idle && this.#workers.size < this.job.parallelism) {
        try {
          idle = this.#spawn();
        } catch (error) {
          const spec = this.#queue.shift()!;
          this.#exited(spec, "unstartable", undefined, `cannot start deno: ${errorMessage(error)}`);
          continue;
        }
      }
      if (!idle) return;
      this.#assign(idle, this.#queue.shift()!);
    }
  }

  #assign(worker: WarmWorker, spec: AttemptSpec): void {
    worker.busy = { spec, log: [], logBytes: 0, cancelled: false };
    const line = JSON.stringify({ task: spec.task, attempt: spec.attempt }) + "\n";
    worker.stdin.write(new TextEncoder().encode(line)).catch(() => {
      // The process is gone; its exit reports the attempt.
    });
    this.onEvent({
      type: "started",
      task: spec.task,
      attempt: spec.attempt,
      at: new Date(),
      host: host(),
    });
  }

  #spawn(): WarmWorker {
    const scratch = Deno.makeTempDirSync({ prefix: "kubeface-warm-" });
    const child = new Deno.Command(this.settings.deno, {
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
    const worker: WarmWorker = {
      child,
      stdin: child.stdin.getWriter(),
      scratch,
      tail: "",
      done: Promise.resolve(),
    };
    worker.done = this.#watch(worker);
    this.#workers.add(worker);
    return worker;
  }

  #kill(worker: WarmWorker): void {
    try {
      worker.child.kill("SIGTERM");
    } catch { /* gone */ }
    clearTimeout(worker.killTimer);
    worker.killTimer = setTimeout(() => {
      try {
        worker.child.kill("SIGKILL");
      } catch { /* gone */ }
    }, this.settings.killGraceMs);
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
          await this.#finish(worker, ended);
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

  async #finish(worker: WarmWorker, ended: AttemptEnded): Promise<void> {
    const busy = worker.busy;
    if (!busy || busy.spec.attempt !== ended.attempt) return;
    worker.busy = undefined;
    await this.#storeLog(busy);
    const detail = ended.code === 0
      ? "exited with code 0"
      : `exited with code ${ended.code}: ${worker.tail.trim()}`;
    worker.tail = "";
    this.#exited(busy.spec, "exited", ended.code, detail);
    this.#pump();
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
    if (busy) {
      worker.busy = undefined;
      await this.#storeLog(busy);
      const tail = worker.tail.trim();
      if (busy.cancelled) this.#exited(busy.spec, "cancelled", status.code, "stopped by kubeface");
      else if (status.signal) {
        this.#exited(
          busy.spec,
          "killed",
          status.code,
          `killed by ${status.signal}${tail ? `; last output: ${tail}` : ""}`,
        );
      } else {
        this.#exited(
          busy.spec,
          "exited",
          status.code,
          `exited with code ${status.code}${tail ? `: ${tail}` : ""}`,
        );
      }
    }
    this.#pump();
  }

  async #storeLog(busy: Busy): Promise<void> {
    try {
      await this.storage.put(
        this.#layout.log(busy.spec.task, busy.spec.attempt),
        new TextEncoder().encode(busy.log.join("")),
        { contentType: "text/plain" },
      );
    } catch {
      // Logs are a convenience; a failed upload must not fail the attempt.
    }
  }

  #exited(
    spec: AttemptSpec,
    reason: ExitReason,
    exitCode: number | undefined,
    detail: string,
  ): void {
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
