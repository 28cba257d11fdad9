/**
 * The task module contract: a module exports `task`, a function of one
 * input, and `inputs`, the values to map it over. The master finds the
 * module (a path or URL), loads its bundle as the workers do, and reads its
 * inputs; what the user's code throws there is a `TaskModuleError`.
 *
 * @module
 */

import { isAbsolute, join, resolve } from "node:path";
import { fileURLToPath as fromFileUrl, pathToFileURL as toFileUrl } from "node:url";
import type { Bundle } from "./bundle.ts";
import { TaskModuleError, userStack } from "./errors.ts";
import type { TaskContext } from "./task_context.ts";

/** Values a job maps over, or a function that returns them. */
export type InputSource<I = unknown> =
  | Iterable<I>
  | AsyncIterable<I>
  | (() => Iterable<I> | AsyncIterable<I> | Promise<Iterable<I> | AsyncIterable<I>>);

/** What a task module exports. */
export interface TaskModule<I = unknown, O = unknown> {
  /**
   * The function run once per input, sync or async; its second argument,
   * if it takes one, is the {@linkcode TaskContext} (signal and checkpoints).
   */
  // deno-lint-ignore no-explicit-any
  task: (input: I, context: TaskContext<any>) => O | Promise<O>;
  /** The inputs, unless they are given to `map()` directly. */
  inputs?: InputSource<I>;
}

/** Resolve a module given as a path (relative to the working directory) or URL. */
export function moduleUrl(module: string | URL): URL {
  if (module instanceof URL) return module;
  if (/^[a-z][a-z0-9+.-]*:/i.test(module) && !/^[a-z]:[\\/]/i.test(module)) return new URL(module);
  return toFileUrl(isAbsolute(module) ? module : resolve(module));
}

/**
 * Check that a local task module exists, before anything is done with it.
 * A relative path is resolved against the working directory, which is not
 * where a job file is: the error then says how to name a module next to
 * the job file.
 *
 * @param module The module as it was given.
 * @param url The module's URL.
 * @throws {TypeError} There is no file at the module's path.
 */
export function checkModuleExists(module: string | URL, url: URL): void {
  if (url.protocol !== "file:") return;
  const path = fromFileUrl(url);
  try {
    if (Deno.statSync(path).isFile) return;
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) return; // let the bundler say what is wrong
  }
  const relative = typeof module === "string" && !isAbsolute(module) &&
    !/^[a-z][a-z0-9+.-]*:/i.test(module);
  if (relative) {
    throw new TypeError(
      `Cannot find task module '${module}': there is no file ${path}; a relative path is resolved against the working directory (${Deno.cwd()}), not against the job file, so name a module next to the job file with new URL(${
        JSON.stringify(module.startsWith(".") ? module : `./${module}`)
      }, import.meta.url)`,
    );
  }
  throw new TypeError(
    typeof module === "string" && isAbsolute(module)
      ? `Cannot find task module '${path}': there is no such file`
      : `Cannot find task module '${url.href}': there is no such file (${path})`,
  );
}

/**
 * Import a bundled task module in this process, as a worker does, and
 * check its exports. The bundle is self-contained, so the module's bare
 * imports resolve as they did when it was bundled (with its own project's
 * import map), whatever this process's configuration is.
 *
 * @param bundle The bundled module.
 * @param module URL of the task module the bundle was made from, for messages.
 * @param needInputs The module must export `inputs`.
 * @throws {TaskModuleError} Loading the module threw (its top level, or its imports).
 * @throws {TypeError} The module has no `task` function, or has no `inputs`
 * while `needInputs` is set.
 */
export async function loadBundle(
  bundle: Bundle,
  module: string,
  needInputs: boolean,
): Promise<TaskModule> {
  const dir = await Deno.makeTempDir({ prefix: "kubeface-module-" });
  let exports: Record<string, unknown>;
  try {
    const path = join(dir, `bundle-${bundle.sha256.slice(0, 16)}.js`);
    await Deno.writeFile(path, bundle.code);
    exports = await import(toFileUrl(path).href);
  } catch (error) {
    throw new TaskModuleError({
      module,
      stage: "load",
      message: `Cannot load task module '${module}': it threw ${describeError(error)}`,
      userStack: error instanceof Error && error.stack ? userStack(error.stack) : String(error),
    }, { cause: error });
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  return checkTaskModule(exports, module, needInputs);
}

/** `Name: message` of a thrown value. */
export function describeError(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/**
 * Check that a module's exports follow the contract.
 *
 * @throws {TypeError} `task` is missing or not a function, or `inputs` is
 * missing while `needInputs` is set.
 */
export function checkTaskModule(
  exports: Record<string, unknown>,
  name: string,
  needInputs: boolean,
): TaskModule {
  if (!("task" in exports)) {
    throw new TypeError(
      `Task module '${name}' does not export 'task'; add 'export function task(input) { … }'`,
    );
  }
  if (typeof exports.task !== "function") {
    throw new TypeError(
      `Task module '${name}' exports 'task' as ${
        describe(exports.task)
      }; it must be a function of one input`,
    );
  }
  if (needInputs && !("inputs" in exports)) {
    throw new TypeError(
      `Task module '${name}' does not export 'inputs'; add 'export const inputs = [ … ]' or pass inputs to map()`,
    );
  }
  return exports as unknown as TaskModule;
}

/**
 * Iterate over an input source: an array, iterable, async iterable, or a
 * function returning one of those.
 *
 * @throws {TypeError} The source is none of those.
 */
export async function* iterateInputs<I>(source: InputSource<I>): AsyncIterable<I> {
  const value = typeof source === "function" ? await source() : source;
  if (value !== null && typeof value === "object") {
    if (Symbol.asyncIterator in value) {
      yield* value as AsyncIterable<I>;
      return;
    }
    if (Symbol.iterator in value) {
      yield* value as Iterable<I>;
      return;
    }
  }
  throw new TypeError(
    `Cannot iterate over 'inputs': got ${
      describe(value)
    }; use an array, an iterable, an async iterable or a function returning one`,
  );
}

/**
 * The inputs, with whatever the user's code throws while they are read (the
 * `inputs` function, or the iterator's `next`) wrapped in a
 * {@linkcode TaskModuleError} that keeps only the user's stack frames.
 *
 * @param source The inputs.
 * @param module URL of the task module, for messages.
 * @param fromModule The inputs are the module's `inputs` export, not given to `map()`.
 */
export function guardInputs<I>(
  source: InputSource<I>,
  module: string,
  fromModule: boolean,
): InputSource<I> {
  /** Inputs read so far; none while the `inputs` function itself runs. */
  let index: number | undefined;
  const fail = (error: unknown) => {
    const what = index === undefined ? "the inputs" : `input ${index}`;
    return new TaskModuleError({
      module,
      stage: "inputs",
      ...(index === undefined ? {} : { index }),
      message: fromModule
        ? `Cannot read ${what} of task module '${module}': its inputs threw ${describeError(error)}`
        : `Cannot read ${what} given to map() for task module '${module}': they threw ${
          describeError(error)
        }`,
      userStack: error instanceof Error && error.stack ? userStack(error.stack) : String(error),
    }, { cause: error });
  };
  return async function* () {
    let value;
    try {
      value = typeof source === "function" ? await source() : source;
    } catch (error) {
      throw fail(error);
    }
    const iterator = value !== null && typeof value === "object"
      ? Symbol.asyncIterator in value
        ? (value as AsyncIterable<I>)[Symbol.asyncIterator]()
        : Symbol.iterator in value
        ? (value as Iterable<I>)[Symbol.iterator]()
        : undefined
      : undefined;
    if (!iterator) {
      yield* iterateInputs(value as InputSource<I>); // throws, saying what it got
      return;
    }
    let done = false;
    index = 0;
    try {
      for (;;) {
        let next: IteratorResult<I>;
        try {
          next = await iterator.next();
        } catch (error) {
          done = true; // a throwing iterator is finished
          throw fail(error);
        }
        if (next.done) {
          done = true;
          return;
        }
        yield next.value;
        index++;
      }
    } finally {
      if (!done) await iterator.return?.();
    }
  };
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  const type = typeof value;
  return type === "object" ? "an object" : type === "undefined" ? "undefined" : `a ${type}`;
}
