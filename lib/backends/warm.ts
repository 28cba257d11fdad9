/**
 * The local backend's warm mode: `parallelism` long-lived worker processes
 * (`worker.ts --serve`), each running one attempt after another. Every
 * attempt still goes through storage and writes the same result record; the
 * manifest, the verified bundle and the task thread are reused, so tasks of
 * one job share a process and the module's state, but nothing else.
 *
 * A worker is handed its next attempt while it runs the current one, so it
 * never waits for the master; an attempt waiting behind a long one moves to
 * a worker that becomes free. At most `parallelism` attempts run at once. A
 * worker that dies is replaced, and the attempts it had not started go back
 * to the queue. A cancelled running attempt is told to stop with a control
 * message: its task's signal fires and it gets the job's grace period, and
 * the worker goes on with its next attempt; only a worker that does not
 * answer within the grace period (plus 5 s) is killed.
 *
 * @module
 */

import { errorMessage } from "../errors.ts";
import { hostName } from "../host.ts";
import { denoRunArgs, localWorkerFiles } from "../worker/launch.ts";
import {
  type AttemptRequest,
  CONTROL_PREFIX,
  type ControlMessage,
  lines,
  stderrPieces,
  type StopRequest,
} from "../worker/protocol.ts";
import type { AttemptSpec, BackendEvent, ExitReason, JobContext } from "./backend.ts";
import { QueueSession, type Started } from "./queue.ts";
import { describeExit, killGrace, spawnWorker, stopProcess, storeLog } from "./worker_process.ts";

/** Most bytes of one attempt's output kept for its log (the end is kept). */
const LOG_BYTES = 8 * 1024 * 1024;
/** Attempts handed to one worker at once: the one it runs and the next. */
const DEPTH = 2;

/** An attempt handed to a worker. */
interface Assigned {
  spec: AttemptSpec;
  started: boolean;
  cancelled: boolean;
  /** Asked back from its worker, to run on one that became free. */
  moving: boolean;
  log: string[];
  logBytes: number;
  /** Resolves the attempt's `done` once its end is reported. */
  settle: () => void;
  /** Kills its worker if a stopped attempt does not end in time. */
  killTimer?: ReturnType<typeof setTimeout>;
}

interface WarmWorker {
  child: Deno.ChildProcess;
  stdin: WritableStreamDefaultWriter<Uint8Array>;
  scratch: string;
  /** Attempts in the order the worker runs them; the first may be running. */
  assigned: Assigned[];
  /** Last lines of standard error, to explain a crash. */
  tail: string;
  /** The attempt whose standard error is being read: between its marks (`stderrMark`). */
  stderrOwner?: Assigned;
  /** Attempts whose end mark was read on standard error, until their end is handled. */
  endMarks: Set<string>;
  /** Wakes an end waiting for its mark. */
  onMark: () => void;
  /** Standard error has ended: no mark will come. */
  stderrDone: boolean;
  /** Cancels the SIGKILL of a worker being stopped. */
  cancelKill: () => void;
  exited: Promise<void>;
  /** Settles once the worker has loaded the job (or has died). */
  ready: Promise<void>;
  markReady: () => void;
}

/** What a warm session needs from the local backend's options. */
export interface WarmSettings {
  /** The Deno executable. */
  deno: string;
  /**
   * Time a stopped attempt (or a worker being shut down) gets before its worker is killed.
   *
   * @default {the job's grace period plus 5000}
   */
  killGraceMs?: number;
}

const encoder = new TextEncoder();

/** A job's session on a pool of warm local workers. */
export class WarmSession extends QueueSession {
  readonly #workers = new Set<WarmWorker>();
  /** Tasks this session has handed out before: their later attempts look for a result first. */
  readonly #seen = new Set<number>();

  /** Start a session; workers start as attempts arrive (or with {@linkcode warmUp}). */
  constructor(
    job: JobContext,
    onEvent: (event: BackendEvent) => void,
    readonly settings: WarmSettings,
  ) {
    super(job, onEvent);
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

  /** Time a stopped attempt or worker gets before its process is killed. */
  get #killGraceMs(): number {
    return killGrace(this.job, this.settings.killGraceMs);
  }

  protected override capacity(): number {
    return this.job.parallelism * DEPTH;
  }

  protected start(spec: AttemptSpec): Started | undefined {
    let worker = this.#leastBusy();
    if (!worker || (worker.assigned.length > 0 && this.#workers.size < this.job.parallelism)) {
      try {
        worker = this.#spawn();
      } catch (error) {
        if (!worker) {
          this.report(spec, "unstartable", undefined, `cannot start deno: ${errorMessage(error)}`);
          return undefined;
        }
      }
    }
    let settle = () => {};
    const done = new Promise<void>((resolve) => (settle = resolve));
    const item: Assigned = {
      spec,
      started: false,
      cancelled: false,
      moving: false,
      log: [],
      logBytes: 0,
      settle,
    };
    this.#hand(worker, item);
    return { done, stop: () => this.#stop(item) };
  }

  protected override async shutdown(): Promise<void> {
    for (const worker of this.#workers) {
      await worker.stdin.close().catch(() => {});
      const timer = setTimeout(() => this.#kill(worker), this.#killGraceMs);
      worker.cancelKill = () => clearTimeout(timer);
    }
    await Promise.all([...this.#workers].map((w) => w.exited));
  }

  /** The worker with the fewest attempts, if one can take another. */
  #leastBusy(): WarmWorker | undefined {
    let best: WarmWorker | undefined;
    for (const worker of this.#workers) {
      if (
        worker.assigned.length < DEPTH && (!best || worker.assigned.length < best.assigned.length)
      ) {
        best = worker;
      }
    }
    return best;
  }

  #hand(worker: WarmWorker, item: Assigned): void {
    worker.assigned.push(item);
    const { task, attempt } = item.spec;
    const first = !this.#seen.has(task);
    this.#seen.add(task);
    this.#send(worker, { task, attempt, ...(first ? { first } : {}) } satisfies AttemptRequest);
  }

  #send(worker: WarmWorker, message: object): void {
    worker.stdin.write(encoder.encode(JSON.stringify(message) + "\n")).catch(() => {
      // The process is gone; its exit reports the attempts.
    });
  }

  #stop(item: Assigned): void {
    if (item.cancelled) return;
    const worker = [...this.#workers].find((w) => w.assigned.includes(item));
    if (!worker) return;
    item.cancelled = true;
    const stop: StopRequest = { stop: item.spec.attempt, reason: "kubeface stopped the attempt" };
    if (item.started) {
      // Its task sees the signal; the worker reports the attempt's end and goes on.
      this.#send(worker, stop);
      item.killTimer = setTimeout(() => this.#kill(worker, 0), this.#killGraceMs);
      return;
    }
    // Not started yet: take it back from the worker (and stop it, should it have just started).
    worker.assigned.splice(worker.assigned.indexOf(item), 1);
    this.#send(worker, stop);
    void this.#end(item, "cancelled", undefined, "cancelled before it started");
  }

  /**
   * A worker has nothing to do: ask back an attempt that waits behind another
   * one's running attempt; when its worker drops it, it moves to a free one.
   */
  #rebalance(idle: WarmWorker): void {
    if (this.closed || idle.assigned.length > 0) return;
    for (const worker of this.#workers) {
      const waiting = worker.assigned.find((a, i) =>
        i > 0 && !a.started && !a.cancelled && !a.moving
      );
      if (!waiting) continue;
      waiting.moving = true;
      this.#send(worker, { cancel: waiting.spec.attempt });
      return;
    }
  }

  #spawn(): WarmWorker {
    const scratch = Deno.makeTempDirSync({ prefix: "kubeface-warm-" });
    let child: Deno.ChildProcess;
    try {
      child = spawnWorker(
        this.settings.deno,
        denoRunArgs({
          storageUrl: this.job.storage.url,
          job: this.job.key,
          scratch,
          permissions: this.job.permissions,
          mode: { serve: true },
          graceMs: this.job.graceMs,
        }, localWorkerFiles()),
        this.job.env,
        "piped",
      );
    } catch (error) {
      Deno.removeSync(scratch, { recursive: true });
      throw error;
    }
    let markReady = () => {};
    const worker: WarmWorker = {
      child,
      stdin: child.stdin.getWriter(),
      scratch,
      assigned: [],
      tail: "",
      endMarks: new Set(),
      onMark: () => {},
      stderrDone: false,
      cancelKill: () => {},
      exited: Promise.resolve(),
      ready: new Promise((resolve) => (markReady = resolve)),
      markReady: () => markReady(),
    };
    worker.exited = this.#watch(worker).finally(() => worker.markReady());
    this.#workers.add(worker);
    return worker;
  }

  /** SIGTERM, then SIGKILL after `graceMs` (at once with 0). */
  #kill(worker: WarmWorker, graceMs = this.#killGraceMs): void {
    worker.cancelKill();
    worker.cancelKill = stopProcess(worker.child, graceMs);
  }

  /** Add to an attempt's log. */
  #append(running: Assigned, text: string): void {
    running.log.push(text);
    running.logBytes += text.length;
    while (running.logBytes > LOG_BYTES && running.log.length > 1) {
      running.logBytes -= running.log.shift()!.length;
    }
  }

  async #control(worker: WarmWorker, message: ControlMessage): Promise<void> {
    if ("ready" in message) return worker.markReady();
    const item = worker.assigned.find((a) => a.spec.attempt === message.attempt);
    if (!item) return; // moved to another worker, or cancelled, before it started
    if ("started" in message) {
      item.started = true;
      this.started(item.spec, hostName());
      return;
    }
    if ("dropped" in message) {
      worker.assigned.splice(worker.assigned.indexOf(item), 1);
      item.moving = false;
      if (!item.cancelled) this.#hand(this.#leastBusy() ?? worker, item);
      return;
    }
    // Its log gets all it wrote on standard error, which is read apart.
    while (!worker.endMarks.has(message.attempt) && !worker.stderrDone) {
      await new Promise<void>((resolve) => (worker.onMark = resolve));
    }
    worker.endMarks.delete(message.attempt);
    worker.assigned.splice(worker.assigned.indexOf(item), 1);
    const { reason, detail } = describeExit(
      { code: message.code },
      message.code ? worker.tail.trim() : "",
    );
    worker.tail = "";
    if (item.cancelled) await this.#end(item, "cancelled", message.code, "stopped by kubeface");
    else await this.#end(item, message.code === 0 ? "exited" : reason, message.code, detail);
    this.#rebalance(worker);
  }

  async #readStdout(worker: WarmWorker): Promise<void> {
    for await (const line of lines(worker.child.stdout)) {
      if (line.startsWith(CONTROL_PREFIX) && line.endsWith("\n")) {
        await this.#control(worker, JSON.parse(line.slice(CONTROL_PREFIX.length)));
      } else if (worker.assigned[0]?.started) {
        this.#append(worker.assigned[0], line);
      }
    }
  }

  async #readStderr(worker: WarmWorker): Promise<void> {
    try {
      for await (const piece of stderrPieces(worker.child.stderr)) {
        if ("text" in piece) {
          if (worker.stderrOwner) this.#append(worker.stderrOwner, piece.text);
          worker.tail = (worker.tail + piece.text).slice(-2000);
        } else if (piece.edge === "start") {
          worker.stderrOwner = worker.assigned.find((a) => a.spec.attempt === piece.attempt);
        } else {
          worker.stderrOwner = undefined;
          worker.endMarks.add(piece.attempt);
          worker.onMark();
        }
      }
    } finally {
      worker.stderrDone = true;
      worker.onMark();
    }
  }

  async #watch(worker: WarmWorker): Promise<void> {
    const [status] = await Promise.all([
      worker.child.status,
      this.#readStdout(worker).catch(() => {}),
      this.#readStderr(worker).catch(() => {}),
    ]);
    worker.cancelKill();
    this.#workers.delete(worker);
    await Deno.remove(worker.scratch, { recursive: true }).catch(() => {});
    const [running, ...waiting] = worker.assigned;
    worker.assigned = [];
    // Attempts it had not started go back to the queue, untouched.
    for (const item of waiting.reverse()) {
      if (!item.cancelled) this.requeue(item.spec);
      item.settle();
    }
    if (!running) return;
    if (!running.started) {
      if (!running.cancelled) this.requeue(running.spec);
      running.settle();
      return;
    }
    if (running.cancelled) {
      await this.#end(running, "cancelled", status.code, "stopped by kubeface");
    } else {
      const { reason, detail } = describeExit(status, worker.tail.trim());
      await this.#end(running, reason, status.code, detail);
    }
  }

  /** Store the attempt's log, report its end, and settle it. */
  async #end(
    item: Assigned,
    reason: ExitReason,
    code: number | undefined,
    detail: string,
  ): Promise<void> {
    clearTimeout(item.killTimer);
    await storeLog(
      this.job.storage,
      this.job.layout.log(item.spec.task, item.spec.attempt),
      { text: item.log.join("") },
      reason === "exited" && code === 0,
    );
    this.ended(item.spec, reason, code, detail);
    item.settle();
  }
}
