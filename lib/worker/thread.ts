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
  DoneMessage,
  LoadMessage,
  RunMessage,
  SharedReply,
  ThreadMessage,
} from "./protocol.ts";

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
  run(message: RunMessage): Promise<DoneMessage> {
    return this.#send(message, [message.payload.buffer as ArrayBuffer]);
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
    resolve?.(done);
  }
}
