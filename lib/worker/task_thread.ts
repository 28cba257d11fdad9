/**
 * The thread that runs a user's task. It starts with only the permissions
 * the user granted (plus its scratch directory), so the task cannot reach
 * the storage credentials of the worker around it. It imports the bundle,
 * decodes the input, runs the task and sends the serialized result back;
 * payloads move as transferred buffers, never copied.
 *
 * @module
 */

import type { ErrorRecord } from "../format/manifest.ts";
import { errorMessage } from "../errors.ts";
import { fileName, fromSlots, inputFile, toSlots } from "../files.ts";
import { reviveShared, setSharedLoader } from "../shared.ts";
import { decodeValue, encodeValue } from "../format/records.ts";
import { checkTaskModule } from "../task_module.ts";
import type {
  DoneMessage,
  LoadMessage,
  RunMessage,
  SharedReply,
  ThreadMessage,
  WorkerMessage,
} from "./protocol.ts";
import { ThreadCheckpoints } from "./thread_context.ts";

const scope = self as unknown as {
  postMessage(message: ThreadMessage, transfer?: Transferable[]): void;
  onmessage: ((event: MessageEvent<WorkerMessage>) => void) | null;
};

const checkpoints = new ThreadCheckpoints((message, transfer) =>
  scope.postMessage(message, transfer)
);
/** The task that runs now, and the controller of its context's signal. */
let current: { task: (...args: never[]) => unknown; stop: AbortController } | undefined;

/** Turn anything thrown into a record with name, message and stack. */
export function errorRecord(thrown: unknown, item?: number): ErrorRecord {
  const record: ErrorRecord = thrown instanceof Error
    ? {
      name: thrown.name,
      message: thrown.message,
      stack: trimStack(thrown.stack ?? `${thrown.name}: ${thrown.message}`),
    }
    : { name: "Error", message: `non-error thrown: ${String(thrown)}`, stack: "" };
  return item === undefined ? record : { ...record, item };
}

/** Cut a stack where it enters kubeface's thread, leaving the user's frames. */
function trimStack(stack: string): string {
  const lines = stack.split("\n");
  const cut = lines.findIndex((line) => line.includes(import.meta.url));
  return (cut > 0 ? lines.slice(0, cut) : lines).join("\n");
}

/** Ends this thread; a task must not reach it (see below). */
const closeThread = globalThis.close.bind(globalThis);

/** Tell the worker the thread ends itself, then end it. */
function endThread(done: Omit<DoneMessage, "type" | "startedAt" | "endedAt">): never {
  const now = Date.now();
  scope.postMessage({ type: "done", startedAt: now, endedAt: now, closed: true, ...done });
  closeThread();
  throw new Error("unreachable: the thread is closed");
}

// A task that calls Deno.exit() or close() would end only this thread and
// leave its worker waiting: Deno.exit() is reported as the task's error,
// close() as a crash of the attempt.
for (
  const [target, name, end] of [
    [Deno, "exit", (code = 0) =>
      endThread({
        error: {
          name: "Error",
          message: `the task called Deno.exit(${code}); a task must return a result or throw`,
          stack: trimStack(new Error().stack ?? ""),
        },
      })],
    [globalThis, "close", () =>
      endThread({
        crash:
          "the task called close(), which ends the thread it runs in; a task must return a result or throw",
      })],
  ] as const
) {
  Object.defineProperty(target, name, { configurable: true, writable: true, value: end });
}

const pending = new Map<number, (reply: SharedReply) => void>();
let nextId = 0;
setSharedLoader((_storage, sha256) => {
  const id = nextId++;
  const reply = new Promise<SharedReply>((resolve) => pending.set(id, resolve));
  scope.postMessage({ type: "shared", id, sha256 });
  return reply.then((r) => {
    if ("error" in r) throw Object.assign(new Error(r.error.message), { name: r.error.name });
    return decodeValue(r.encoding, r.payload);
  });
});

/** The buffer to transfer with a payload: only one the payload owns whole (not a pool slice). */
function ownBuffer(bytes: Uint8Array | undefined): ArrayBuffer[] {
  return bytes && bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength
    ? [bytes.buffer as ArrayBuffer]
    : [];
}

async function load(message: RunMessage | LoadMessage) {
  const exports = await import(message.bundle) as Record<string, unknown>;
  return checkTaskModule(exports, message.module, false);
}

async function run(message: RunMessage): Promise<DoneMessage> {
  const { task } = await load(message);
  const files = message.files ?? [];
  const input = fromSlots(
    reviveShared(decodeValue(message.encoding, message.payload)),
    (slot) => inputFile(slot, files[slot.slot]!),
  );
  const stop = new AbortController();
  current = { task, stop };
  const context = (item: number) =>
    checkpoints.context(
      (message.first ?? message.task) + item,
      message.attempt ?? "",
      stop.signal,
      message.scratch ?? "",
    );
  const startedAt = Date.now();
  let item = 0;
  try {
    let value: unknown;
    if (message.batch) {
      const results: unknown[] = [];
      for (const one of input as unknown[]) {
        results.push(await task(one, context(item)));
        item++;
      }
      value = results;
    } else {
      value = await task(input, context(0));
    }
    const what = message.batch
      ? `the results of task ${message.task}`
      : `the result of task ${message.task}`;
    const returned: string[] = [];
    value = toSlots(value, (path) => {
      let size: number;
      try {
        size = Deno.statSync(path).size;
      } catch (error) {
        throw new Error(
          `Cannot return the file '${path}': ${
            errorMessage(error)
          }; a task returns files it wrote in its scratch directory`,
        );
      }
      return { slot: returned.push(path) - 1, name: fileName(path), size };
    });
    const { encoding, bytes } = encodeValue(value, what);
    return {
      type: "done",
      startedAt,
      endedAt: Date.now(),
      result: { encoding, bytes },
      ...(returned.length ? { files: returned } : {}),
    };
  } catch (thrown) {
    return {
      type: "done",
      startedAt,
      endedAt: Date.now(),
      error: errorRecord(thrown, message.batch ? item : undefined),
    };
  } finally {
    current = undefined;
  }
}

scope.onmessage = (event) => {
  const message = event.data;
  if (message.type === "shared") {
    pending.get(message.id)?.(message);
    pending.delete(message.id);
    return;
  }
  if (message.type === "checkpointed" || message.type === "restored") {
    return checkpoints.reply(message);
  }
  if (message.type === "stop") {
    // A task of one parameter cannot see the signal: the worker stops it at once.
    const running = current;
    running?.stop.abort(new DOMException(message.reason, "AbortError"));
    scope.postMessage({ type: "stopping", listens: (running?.task.length ?? 0) >= 2 });
    return;
  }
  const work = message.type === "load"
    ? load(message).then((): DoneMessage => ({ type: "done", startedAt: 0, endedAt: 0 }))
    : run(message);
  work.then(
    (done) => scope.postMessage(done, ownBuffer(done.result?.bytes)),
    (error) =>
      scope.postMessage({
        type: "done",
        startedAt: Date.now(),
        endedAt: Date.now(),
        error: errorRecord(error),
      }),
  );
};
