/**
 * An informer that takes its initial state from a streaming watch-list (KEP-3157): one watch with
 * `sendInitialEvents=true` sends every object, then a bookmark marking the end of the initial
 * events, then changes — on one stream, from the apiserver's watch cache. A list in pages, then
 * a watch from the list's resourceVersion, is the fallback for servers that refuse it.
 *
 * Why not client-node's `ListWatch`: at 50,000 pods on a loaded control plane, its relist (96
 * pages, 5 minutes) ended at a resourceVersion the watch cache no longer held, so the watch from
 * it failed with 410 Gone at once and the informer listed again, in a loop (bench/RESULTS.md,
 * "width at 50,000 tasks"). A watch-list has no gap between the state and the watch.
 *
 * @module
 */

import type {
  ErrorCallback,
  Informer,
  KubernetesObject,
  ObjectCallback,
  V1ListMeta,
  Watch,
} from "@kubernetes/client-node";
import { apiStatus } from "./api_errors.ts";

/** The annotation of the bookmark that ends a watch-list's initial events. */
export const INITIAL_EVENTS_END = "k8s.io/initial-events-end";

/** A whole list, as {@linkcode listInPages} returns it. */
export interface ObjectList<T> {
  metadata?: V1ListMeta;
  items: T[];
}

/** Options of {@linkcode WatchListInformer}. */
export interface WatchListInformerOptions<T> {
  /** The collection's path, e.g. `/api/v1/namespaces/default/pods`. */
  path: string;
  /** Opens watch requests (see `ServerTimeoutWatch`). */
  watch: Watch;
  /** Lists the whole collection: the fallback where the server refuses a watch-list. */
  list: () => Promise<ObjectList<T>>;
  /** Only objects with these labels. @default {every object} */
  labelSelector?: string;
  /**
   * Take the initial state from a watch-list. With `false`, or once the server refused one (an
   * apiserver before v1.27, or with the `WatchList` feature off), list then watch.
   * @default true
   */
  watchList?: boolean;
  /**
   * How long the server may take for a watch-list's initial events, in seconds: the stream is
   * one request, and a list of 100,000 objects to a busy client can outlast a watch's usual time.
   * @default 1800
   */
  initialTimeoutSeconds?: number;
}

type Verb = "add" | "update" | "delete";
type Hook = "connect" | "error";

/** The key of an object in the cache. */
function keyOf(object: KubernetesObject): string {
  return `${object.metadata?.namespace ?? ""}/${object.metadata?.name ?? ""}`;
}

/**
 * Bring `cache` to the state `fresh` (every object, as the server has them now), calling back for
 * each difference: an add for an object new to the cache, an update for one whose resourceVersion
 * changed, a delete for one no longer there. Objects already in `fresh` were called back for as
 * they came (`seen`); only deletes are left.
 *
 * @param cache The informer's objects, by key; changed in place.
 * @param fresh Keys of the objects the new state holds.
 * @param onDelete Called for each object dropped.
 */
export function dropMissing<T extends KubernetesObject>(
  cache: Map<string, T>,
  fresh: ReadonlySet<string>,
  onDelete: (object: T) => void,
): void {
  for (const [key, object] of cache) {
    if (fresh.has(key)) continue;
    cache.delete(key);
    onDelete(object);
  }
}

/**
 * An informer of one collection, by label: the `Informer` of client-node (add, update, delete,
 * connect and error callbacks; `start`, `stop`), its initial state from a streaming watch-list.
 * After a watch ends it watches again from the last resourceVersion; after 410 Gone it takes the
 * state again (objects gone meanwhile are reported deleted); after any other error it calls the
 * error callbacks and stops, to be started again by its owner (see `keepWatching`).
 *
 * @example Watch the pods of a job
 * ```ts ignore
 * import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
 * import { WatchListInformer } from "./informer.ts";
 * import { listInPages, ServerTimeoutWatch } from "./watch.ts";
 *
 * const kc = new KubeConfig();
 * kc.loadFromDefault();
 * const core = kc.makeApiClient(CoreV1Api);
 * const informer = new WatchListInformer({
 *   path: "/api/v1/namespaces/default/pods",
 *   watch: new ServerTimeoutWatch(kc),
 *   list: () => listInPages((_continue, limit) =>
 *     core.listNamespacedPod({ namespace: "default", limit, _continue })),
 * });
 * informer.on("add", (pod) => console.log("pod", pod.metadata?.name));
 * await informer.start(); // resolves once the initial state was called back
 * await informer.stop();
 * ```
 */
export class WatchListInformer<T extends KubernetesObject> implements Informer<T> {
  readonly #options: WatchListInformerOptions<T>;
  readonly #objects = new Map<string, T>();
  readonly #callbacks: Record<Verb, ObjectCallback<T>[]> & Record<Hook, ErrorCallback[]> = {
    add: [],
    update: [],
    delete: [],
    connect: [],
    error: [],
  };
  #watchList: boolean;
  /** Where the next watch resumes; empty: take the whole state first. */
  #resourceVersion = "";
  #stopped = true;
  /** Counts watch requests: events of an older one (an aborted body that went on) are dropped. */
  #generation = 0;
  #request: AbortController | undefined;

  /** @param options What to watch, and how. */
  constructor(options: WatchListInformerOptions<T>) {
    this.#options = options;
    this.#watchList = options.watchList ?? true;
  }

  /** Whether the informer takes its state from a watch-list (false once the server refused). */
  get watchList(): boolean {
    return this.#watchList;
  }

  on(verb: "add" | "update" | "delete" | "change", cb: ObjectCallback<T>): void;
  on(verb: "error" | "connect", cb: ErrorCallback): void;
  /** Call `cb` on each event of kind `verb` ("change": add, update and delete). */
  on(verb: string, cb: ObjectCallback<T> | ErrorCallback): void {
    for (const v of verb === "change" ? ["add", "update", "delete"] : [verb]) {
      const list = this.#listeners(v);
      if (!list) throw new TypeError(`Cannot listen to "${verb}": not an informer event`);
      list.push(cb);
    }
  }

  off(verb: "add" | "update" | "delete" | "change", cb: ObjectCallback<T>): void;
  off(verb: "error" | "connect", cb: ErrorCallback): void;
  /** Stop calling `cb` on events of kind `verb`. */
  off(verb: string, cb: ObjectCallback<T> | ErrorCallback): void {
    for (const v of verb === "change" ? ["add", "update", "delete"] : [verb]) {
      const list = this.#listeners(v);
      const at = list?.indexOf(cb) ?? -1;
      if (at >= 0) list!.splice(at, 1);
    }
  }

  #listeners(verb: string): unknown[] | undefined {
    return Object.hasOwn(this.#callbacks, verb)
      ? (this.#callbacks as Record<string, unknown[]>)[verb]
      : undefined;
  }

  /** The objects the informer holds now. */
  list(): T[] {
    return [...this.#objects.values()];
  }

  /**
   * Start (or restart after an error): take the state, unless resuming from the last
   * resourceVersion, then watch. Resolves once the initial state was called back, or the
   * attempt failed (the error callbacks were called).
   */
  start(): Promise<void> {
    this.#stopped = false;
    return this.#connect();
  }

  /** Stop watching; the cache is kept, and `start` resumes from where it stopped. */
  stop(): Promise<void> {
    this.#stopped = true;
    this.#generation++;
    this.#request?.abort();
    this.#request = undefined;
    return Promise.resolve();
  }

  #emit(verb: Verb, object: T): void {
    for (const cb of this.#callbacks[verb].slice()) cb(object);
  }

  #fail(error: unknown): void {
    for (const cb of this.#callbacks.error.slice()) cb(error);
  }

  /** Keep `object`, calling back if it is new or changed. */
  #upsert(object: T): void {
    const key = keyOf(object);
    const known = this.#objects.get(key);
    if (known && known.metadata?.resourceVersion === object.metadata?.resourceVersion) return;
    this.#objects.set(key, object);
    this.#emit(known ? "update" : "add", object);
  }

  #remove(object: T): void {
    const key = keyOf(object);
    const known = this.#objects.get(key);
    this.#objects.delete(key);
    this.#emit("delete", known ?? object);
  }

  /** One watch request (after a list, in the fallback); resolves once the state is in. */
  async #connect(): Promise<void> {
    if (this.#stopped) return;
    const generation = ++this.#generation;
    for (const cb of this.#callbacks.connect.slice()) cb(undefined);
    const resync = this.#resourceVersion === "";
    if (resync && !this.#watchList) {
      let list: ObjectList<T>;
      try {
        list = await this.#options.list();
      } catch (error) {
        return this.#fail(error);
      }
      if (generation !== this.#generation) return;
      const fresh = new Set<string>();
      for (const object of list.items) {
        fresh.add(keyOf(object));
        this.#upsert(object);
      }
      dropMissing(this.#objects, fresh, (object) => this.#emit("delete", object));
      this.#resourceVersion = list.metadata?.resourceVersion ?? "";
    }
    const streaming = resync && this.#watchList;
    /** Objects of the initial events so far, while they come. */
    let initial: Set<string> | undefined = streaming ? new Set() : undefined;
    const { promise: synced, resolve: sync } = Promise.withResolvers<void>();
    if (!streaming) sync();
    const params: Record<string, string | number | boolean | undefined> = {
      labelSelector: this.#options.labelSelector,
    };
    if (streaming) {
      params.sendInitialEvents = true;
      params.resourceVersionMatch = "NotOlderThan";
      params.timeoutSeconds = this.#options.initialTimeoutSeconds ?? 1800;
    } else params.resourceVersion = this.#resourceVersion;
    const current = () => generation === this.#generation && !this.#stopped;
    const onEvent = (type: string, object: T) => {
      if (!current()) return;
      switch (type) {
        case "ADDED":
        case "MODIFIED":
          initial?.add(keyOf(object));
          this.#upsert(object);
          if (!initial) this.#resourceVersion = object.metadata?.resourceVersion ?? "";
          return;
        case "DELETED":
          initial?.delete(keyOf(object));
          this.#remove(object);
          if (!initial) this.#resourceVersion = object.metadata?.resourceVersion ?? "";
          return;
        case "BOOKMARK":
          if (initial && object.metadata?.annotations?.[INITIAL_EVENTS_END] !== "true") {
            // A server that ignored `sendInitialEvents` (before v1.27): its state never ends.
            this.#watchList = false;
            this.#request?.abort();
            return onDone(undefined);
          }
          this.#resourceVersion = object.metadata?.resourceVersion ?? this.#resourceVersion;
          if (initial) {
            dropMissing(this.#objects, initial, (gone) => this.#emit("delete", gone));
            initial = undefined;
            sync();
          }
          return;
        case "ERROR":
          // 410 Gone: the resourceVersion is older than the server keeps; take the state again.
          if ((object as { code?: number }).code === 410) this.#resourceVersion = "";
      }
    };
    const onDone = (error: unknown) => {
      if (!current()) return sync();
      this.#generation++; // whatever the ended request still delivers is stale
      this.#request = undefined;
      // Ended before the state was all in: take it again.
      if (initial) this.#resourceVersion = "";
      const status = error ? apiStatus(error) ?? (error as { statusCode?: number }).statusCode : 0;
      if (status === 410) this.#resourceVersion = "";
      else if (error) {
        // Refused as invalid: the apiserver's WatchList feature is off. List then watch instead.
        const refused = streaming && (status === 400 || status === 422);
        if (!refused) return sync(), this.#fail(error);
        this.#watchList = false;
      }
      // Ended by the server (its timeout, a slow reader), or after a 410: watch again.
      this.#connect().then(sync);
    };
    try {
      this.#request = await this.#options.watch.watch(
        this.#options.path,
        params,
        (type, object) => onEvent(type, object as T),
        onDone,
      );
    } catch (error) {
      onDone(error);
    }
    await synced;
  }
}
