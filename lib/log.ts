/**
 * Step-by-step logging, for `--verbose`: a {@linkcode Logger} gets one line
 * per step on a named channel. Storage and backend calls are logged by
 * wrapping the storage and the backend, so their implementations stay as
 * they are.
 *
 * @module
 */

import type { AttemptSpec, Backend, BackendEvent, BackendSession } from "./backends/backend.ts";
import { errorMessage } from "./errors.ts";
import type { Body, Storage } from "./storage/storage.ts";

/** The channels kubeface logs its steps on. */
export type LogChannel = "master" | "storage" | "backend";

/**
 * Receives one line per step kubeface takes: preparing a job, each storage
 * call, each backend call and event.
 */
export type Logger = (channel: LogChannel, message: string) => void;

/** A logger that drops every line. */
export const SILENT: Logger = (): void => {};

function elapsed(started: number): string {
  return `${Math.round(performance.now() - started)} ms`;
}

function size(body: Body): string {
  return body instanceof Uint8Array ? `${body.length} bytes` : "a stream";
}

/** Call `fn`, logging its end (with the time it took and `describe`'s summary) or its failure. */
async function step<T>(
  log: Logger,
  channel: LogChannel,
  what: string,
  fn: () => Promise<T>,
  describe: (value: T) => string = () => "",
): Promise<T> {
  const started = performance.now();
  try {
    const value = await fn();
    const detail = describe(value);
    log(channel, `${what}${detail ? `: ${detail}` : ""} (${elapsed(started)})`);
    return value;
  } catch (error) {
    log(channel, `${what} failed after ${elapsed(started)}: ${errorMessage(error)}`);
    throw error;
  }
}

/**
 * A backend call: logged as it starts (with `detail`), since the events it
 * causes are logged before it returns, and as it ends.
 */
function backendStep<T>(
  log: Logger,
  what: string,
  detail: string,
  fn: () => Promise<T>,
  describe: (value: T) => string = () => "done",
): Promise<T> {
  log("backend", `${what}${detail ? ` ${detail}` : ""}…`);
  return step(log, "backend", what, fn, describe);
}

/**
 * Wrap an object so that the methods named in `logged` go through the given
 * functions and every other member is the object's own.
 */
function wrap<T extends object>(target: T, logged: Partial<Record<keyof T, unknown>>): T {
  return new Proxy(target, {
    get(object, property) {
      if (Object.hasOwn(logged, property)) return logged[property as keyof T];
      const value = Reflect.get(object, property, object);
      return typeof value === "function" ? value.bind(object) : value;
    },
  });
}

/**
 * The storage, logging each call (`get`, `put`, `stat`, `list`, `delete`)
 * with its key, outcome and time on the `storage` channel.
 */
export function loggedStorage(storage: Storage, log: Logger): Storage {
  const root = storage.url;
  return wrap<Storage>(storage, {
    get: (key: string) => step(log, "storage", `get ${root}${key}`, () => storage.get(key)),
    put: (key: string, body: Body, options?: Parameters<Storage["put"]>[2]) =>
      step(
        log,
        "storage",
        `put ${root}${key} (${size(body)}${options?.ifAbsent ? ", if absent" : ""})`,
        () => storage.put(key, body, options),
        (written) => written ? "" : "it exists, not written",
      ),
    stat: (key: string) =>
      step(
        log,
        "storage",
        `stat ${root}${key}`,
        () => storage.stat(key),
        (info) => info ? `${info.size} bytes` : "absent",
      ),
    delete: (key: string) =>
      step(log, "storage", `delete ${root}${key}`, () => storage.delete(key)),
    list: async function* (prefix: string) {
      const started = performance.now();
      let count = 0;
      try {
        for await (const info of storage.list(prefix)) {
          count++;
          yield info;
        }
      } finally {
        log("storage", `list ${root}${prefix}: ${count} object(s) (${elapsed(started)})`);
      }
    },
  });
}

function describeAttempts(attempts: readonly AttemptSpec[]): string {
  const shown = attempts.slice(0, 5).map((a) => `task ${a.task} (attempt ${a.attempt})`);
  const more = attempts.length > shown.length ? `, and ${attempts.length - shown.length} more` : "";
  return `${attempts.length} attempt(s): ${shown.join(", ")}${more}`;
}

function describeEvent(event: BackendEvent): string {
  const which = `task ${event.task} attempt ${event.attempt}`;
  switch (event.type) {
    case "started":
      return `${which} started${event.host ? ` on ${event.host}` : ""}`;
    case "waiting":
      return `${which} waiting: ${event.detail}`;
    case "exited":
      return `${which} ended (${event.reason}${
        event.exitCode === undefined ? "" : `, exit code ${event.exitCode}`
      })${event.detail ? `: ${event.detail}` : ""}`;
  }
}

function loggedSession(session: BackendSession, name: string, log: Logger): BackendSession {
  return wrap<BackendSession>(session, {
    submit: (attempts: readonly AttemptSpec[]) =>
      backendStep(
        log,
        `${name}: submit`,
        describeAttempts(attempts),
        () => session.submit(attempts),
      ),
    cancel: (attempts: readonly string[]) =>
      backendStep(
        log,
        `${name}: cancel`,
        `${attempts.length} attempt(s): ${attempts.join(", ")}`,
        () => session.cancel(attempts),
      ),
    close: (options?: { stopRunning?: boolean }) =>
      backendStep(
        log,
        `${name}: close`,
        options?.stopRunning === false ? "(leaving running attempts)" : "",
        () => session.close(options),
      ),
  });
}

/**
 * The backend, logging each call (opening a job, submitting, cancelling,
 * closing, cleaning up) and each event it reports on the `backend` channel.
 */
export function loggedBackend(backend: Backend, log: Logger): Backend {
  const name = backend.name;
  return wrap<Backend>(backend, {
    open: async (job: Parameters<Backend["open"]>[0], onEvent: (event: BackendEvent) => void) => {
      const session = await backendStep(
        log,
        `${name}: open job ${job.key}`,
        `(${job.tasks} task(s), parallelism ${job.parallelism}, storage ${job.storage.url})`,
        () =>
          backend.open(job, (event) => {
            log("backend", `${name}: ${describeEvent(event)}`);
            onEvent(event);
          }),
      );
      return loggedSession(session, name, log);
    },
    cleanup: (jobKey: string) =>
      backendStep(
        log,
        `${name}: clean up job ${jobKey}`,
        "",
        () => backend.cleanup(jobKey),
        (lines) => `${lines.length} thing(s) removed`,
      ),
  });
}
