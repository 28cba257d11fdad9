/**
 * Shared values: a large value stored once (content-addressed, under
 * `shared/<sha256>`) and handed to every task as a small reference, which
 * the worker loads lazily and at most once per process — the counterpart of
 * the original kubeface's RemoteObject. This module holds the reference and
 * has no storage code, so a task thread can load it cheaply; storing and
 * reading values is in `shared_store.ts`.
 *
 * ```ts ignore
 * const table = await client.share(bigTable);              // stored once
 * client.map(new URL("./task.ts", import.meta.url), { inputs: ids.map((id) => ({ id, table })) });
 * // task.ts: export async function task({ id, table }) { (await table.get())[id] }
 * ```
 *
 * @module
 */

import { findRefs, replaceRefs } from "./refs.ts";

const KIND = "kubeface.shared";

/** A reference to a stored value. Passing it in an input costs a few bytes. */
export class Shared<T> {
  /** Marks the object as a reference after it crossed storage. */
  readonly kind: "kubeface.shared" = KIND;
  /** Storage root URL holding the value. */
  readonly storage: string;
  /** Hex sha256 of the stored record; also its name, `shared/<sha256>`. */
  readonly sha256: string;
  /** Size of the stored record in bytes. */
  readonly size: number;

  /** Used by `shareValue` (`Client.share`). */
  constructor(storage: string, sha256: string, size: number) {
    this.storage = storage;
    this.sha256 = sha256;
    this.size = size;
  }

  /** The value, loaded on first use and then kept for the life of the process. */
  get(): Promise<T> {
    let value = loaded.get(this.sha256);
    if (!value) {
      value = loader(this.storage, this.sha256);
      value.catch(() => loaded.delete(this.sha256));
      loaded.set(this.sha256, value);
    }
    return value as Promise<T>;
  }
}

const loaded = new Map<string, Promise<unknown>>();

/** Loads a shared value: from storage by default; a task thread asks its worker instead. */
export type SharedLoader = (storage: string, sha256: string) => Promise<unknown>;

let loader: SharedLoader = async (storage, sha256) => {
  // A computed specifier, so that bundles of the task thread (which sets its
  // own loader) leave the storage code out.
  const store = new URL("./shared_store.ts", import.meta.url).href;
  const { loadShared } = await import(store) as typeof import("./shared_store.ts");
  return await loadShared(storage, sha256);
};

/** Replace how shared values are loaded in this process (or thread). */
export function setSharedLoader(load: SharedLoader): void {
  loader = load;
}

/** Whether a value is a reference (a {@linkcode Shared}, or one that crossed storage). */
function isRef(value: Record<string, unknown>): value is { storage: string; sha256: string } {
  return typeof value.sha256 === "string" && typeof value.storage === "string";
}

/** The references in a value, looked for where {@linkcode reviveShared} revives them. */
export function* sharedRefs(value: unknown): Generator<{ storage: string; sha256: string }> {
  for (const ref of findRefs(value, KIND)) if (isRef(ref)) yield ref;
}

/**
 * Give references that crossed storage (plain objects now) their methods
 * back, in place, where `lib/refs.ts` looks for references.
 */
export function reviveShared<T>(value: T): T {
  return replaceRefs(value, KIND, (ref) => {
    if (isRef(ref)) Object.setPrototypeOf(ref, Shared.prototype);
    return ref;
  }) as T;
}
