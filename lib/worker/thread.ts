/**
 * The worker's side of the task thread: start it with only the task's
 * permissions, send it tasks one at a time, answer its requests for shared
 * values. A thread serves one job; it is replaced if it dies.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { errorMessage } from "../errors.ts";
import type { Encoding } from "../format/records.ts";
import { PERMISSION_NAMES, type PermissionSet } from "../permissions.ts";
import type {
  CheckpointReply,
  CheckpointRequest,
  DoneMessage,
  LoadMessage,
  RestoreReply,
  RestoreRequest,
  RunMessage,
  SharedReply,
  StopMessage,
  ThreadMessage,
} from "./protocol.ts";
import { ownBuffer } from "./thread_context.ts";

/** What the worker does for the task's context while a task runs. */
export interface RunHooks {
  /** Store a checkpoint. */
  checkpoint(request: CheckpointRequest): Promise<CheckpointReply>;
  /** Read the last checkpoint. */
  restore(request: RestoreRequest): Promise<RestoreReply>;
  /** The thread answered a stop request: whether the task can see the signal. */
  stopping(listens: boolean): void;
  /** A line for the attempt's log. */
  warn(message: string): void;
}

/**
 * The thread's module: `task_thread.ts` next to this file in a checkout, or
 * `task_thread.js` next to the bundled worker (`worker.js`) in a pod.
 */
const BUNDLED = import.meta.url.endsWith(".js");
const MODULE = new URL(BUNDLED ? "./task_thread.js" : "./task_thread.ts", import.meta.url);

/** Where the thread's own modules are read from, when they are local files. */
export const THREAD_CODE: string[] = MODULE.protocol === "file:"
  ? [fileURLToPath(new URL(BUNDLED ? "./" : "../", MODULE))]
  : [];

/** Deno's permission object for a thread, from a permission set. */
function threadPermissions(set: PermissionSet): Deno.PermissionOptionsObject {
  const out: Record<string, boolean | string[]> = {};
  for (const name of PERMISSION_NAMES) out[name] = set[name] ?? false;
  return out as Deno.PermissionOptionsObject;
}

/** Reads one of the job's shared values for the thread, not decoded. */
export type SharedSource = (sha256: string) => Promise<{ encoding: Encoding; payload: Uint8Array }>;

/** A thread that runs tasks with only the permissions it was given. */
export class TaskThread {
  #worker: Worker | undefined;
  readonly #permissions: PermissionSet;
  readonly #shared: SharedSource;
  #current: ((done: DoneMessage) => void) | undefined;
  #hooks: RunHooks | undefined;

  /**
   * A thread with `permissions`, whose requests for shared values `shared`
   * answers; it starts on the first task, or with {@linkcode start}.
   */
  constructor(permissions: PermissionSet, shared: SharedSource) {
    this.#permissions = permissions;
    this.#shared = shared;
  }

  /** Start the thread now (if it is not running), so it boots while the caller does other work. */
  start(): void {
    this.#worker ??= this.#start();
  }

  /** Run one task; resolves when the thread reports that it ended. */
  run(message: RunMessage, hooks?: RunHooks): Promise<DoneMessage> {
    this.#hooks = hooks;
    return this.#send(message, [message.payload.buffer as ArrayBuffer]);
  }

  /** Fire the running task's signal; the thread answers through `hooks.stopping`. */
  stop(reason: string): void {
    this.#worker?.postMessage({ type: "stop", reason } satisfies StopMessage);
  }

  /** Start the thread and import the bundle, ahead of the first task. */
  load(message: LoadMessage): Promise<DoneMessage> {
    return this.#send(message, []);
  }

  #send(message: RunMessage | LoadMessage, transfer: Transferable[]): Promise<DoneMessage> {
    this.start();
    const worker = this.#worker!;
    return new Promise<DoneMessage>((resolve) => {
      this.#current = resolve;
      worker.postMessage(message, transfer);
    });
  }

  /** Stop the thread. */
  close(): void {
    this.#worker?.terminate();
    this.#worker = undefined;
  }

  #start(): Worker {
    const worker = new Worker(MODULE, {
      type: "module",
      deno: { permissions: threadPermissions(this.#permissions) },
    });
    worker.onmessage = (event: MessageEvent<ThreadMessage>) => {
      const data = event.data;
      if (data.type === "done") {
        if (data.closed) this.close();
        this.#finish(data);
        return;
      }
      if (data.type !== "shared") return this.#context(worker, data);
      this.#shared(String(data.sha256)).then(
        ({ encoding, payload }) =>
          worker.postMessage(
            { type: "shared", id: data.id, encoding, payload } satisfies SharedReply,
            [payload.buffer as ArrayBuffer],
          ),
        (error) =>
          worker.postMessage(
            {
              type: "shared",
              id: data.id,
              error: { name: "Error", message: errorMessage(error), stack: "" },
            } satisfies SharedReply,
          ),
      );
    };
    // An error the task left behind (an unhandled rejection, a throw in a
    // timer) ends the thread: report it as the task's error.
    worker.onerror = (event) => {
      event.preventDefault();
      this.close();
      const now = Date.now();
      this.#finish({
        type: "done",
        startedAt: now,
        endedAt: now,
        error: {
          name: "Error",
          message: event.message,
          stack: `${event.message}\n    at ${event.filename}:${event.lineno}:${event.colno}`,
        },
      });
    };
    return worker;
  }

  #finish(done: DoneMessage): void {
    const resolve = this.#current;
    this.#current = undefined;
    this.#hooks = undefined;
    resolve?.(done);
  }

  /** A request of the task's context, answered by the run's hooks. */
  #context(
    worker: Worker,
    data: Exclude<ThreadMessage, DoneMessage | { type: "shared" }>,
  ): void {
    const hooks = this.#hooks;
    switch (data.type) {
      case "stopping":
        return hooks?.stopping(data.listens);
      case "warning":
        return hooks?.warn(data.message);
      case "checkpoint":
        void hooks?.checkpoint(data).then((reply) => this.#reply(worker, reply, []));
        return;
      case "restore":
        void hooks?.restore(data).then((reply) =>
          this.#reply(worker, reply, "payload" in reply ? ownBuffer(reply.payload) : [])
        );
        return;
    }
  }

  /** Answer the thread, unless it was stopped meanwhile. */
  #reply(worker: Worker, reply: CheckpointReply | RestoreReply, transfer: Transferable[]): void {
    if (this.#worker !== worker) return;
    try {
      worker.postMessage(reply, transfer);
    } catch { /* terminated meanwhile */ }
  }
}
