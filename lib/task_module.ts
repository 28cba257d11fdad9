/**
 * The task module contract: a module exports `task`, a function of one
 * input, and `inputs`, the values to map it over.
 *
 * @module
 */

import { isAbsolute, resolve } from "node:path";
import { pathToFileURL as toFileUrl } from "node:url";
import { errorMessage } from "./errors.ts";
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
 * Import a task module and check its exports.
 *
 * @throws {TypeError} The module cannot be imported, has no `task` function,
 * or has no `inputs` while `needInputs` is set.
 */
export async function loadTaskModule(url: URL, needInputs: boolean): Promise<TaskModule> {
  let exports: Record<string, unknown>;
  try {
    exports = await import(url.href);
  } catch (error) {
    throw new TypeError(`Cannot load task module '${url.href}': ${errorMessage(error)}`, {
      cause: error,
    });
  }
  return checkTaskModule(exports, url.href, needInputs);
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

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  const type = typeof value;
  return type === "object" ? "an object" : type === "undefined" ? "undefined" : `a ${type}`;
}
