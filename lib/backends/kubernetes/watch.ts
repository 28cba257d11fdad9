/**
 * The watches of kubeface's informers: a client-node `Watch` whose watches are ended by the
 * apiserver, not by the client; lists in pages; the pod and Job informers of a session.
 *
 * client-node 2.0.1 aborts a watch that has been quiet for `requestTimeoutMs` (30 s) and
 * expects the aborted body to end the watch. Under Deno the abort never reaches the body
 * streams, so `done` is never called and an informer silently stops receiving events after
 * 30 quiet seconds. Asking the server to close each watch (`timeoutSeconds`) ends it cleanly,
 * and the informer resumes from the last resourceVersion; the client-side timer is pushed out of
 * the way.
 *
 * @module
 */

import {
  BatchV1Api,
  CoreV1Api,
  type Informer,
  type KubeConfig,
  type KubernetesObject,
  type V1Job,
  type V1Pod,
  Watch,
} from "@kubernetes/client-node";
import { apiStatus } from "./api_errors.ts";
import { type ObjectList, WatchListInformer } from "./informer.ts";

/** A `Watch` that adds `timeoutSeconds` (jittered) and bookmarks to every watch request. */
export class ServerTimeoutWatch extends Watch {
  readonly #timeoutSeconds: number;

  /**
   * @param config The client configuration.
   * @param timeoutSeconds Server-side duration of one watch request (jittered up to +50 %).
   */
  constructor(config: KubeConfig, timeoutSeconds = 60) {
    super(config);
    this.#timeoutSeconds = timeoutSeconds;
    // Longer than any server-side timeout, so the broken client-side abort never fires.
    (this as unknown as { requestTimeoutMs: number }).requestTimeoutMs = 30 * 60_000;
  }

  /** Start a watch; see `Watch.watch`. A `timeoutSeconds` of the caller is kept. */
  override watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    const timeoutSeconds = queryParams.timeoutSeconds ??
      Math.round(this.#timeoutSeconds * (1 + Math.random() / 2));
    return super.watch(
      path,
      { ...queryParams, timeoutSeconds, allowWatchBookmarks: true },
      callback,
      done,
    );
  }
}

/**
 * Keep an informer running: it lists again by itself after a 410 Gone, but
 * on any other error it stops, so restart it, backing off from 0.5 s up to
 * 30 s, until `closed()` says the session ended.
 */
export function keepWatching<T extends KubernetesObject>(
  informer: Informer<T>,
  closed: () => boolean,
): void {
  let delay = 500;
  informer.on("error", () => {
    if (closed()) return;
    setTimeout(() => {
      if (!closed()) informer.start().catch(() => {});
    }, delay);
    delay = Math.min(delay * 2, 30_000);
  });
  informer.on("connect", () => (delay = 500));
}

/** Objects per list request: client-go's and kubectl's chunk size. */
export const LIST_PAGE_SIZE = 500;

/**
 * List all objects in pages of `limit`, as client-go's reflector does: an informer's list of
 * 50,000 pods in one request outlasts the apiserver's 60 s request timeout on a busy control
 * plane, then fails again on each retry, and the watch never resumes; a page does not. The
 * pages are one snapshot, at the first page's resourceVersion; when the continue token expired
 * meanwhile (410 Gone), the list starts over.
 *
 * @param page Lists one page: `cont` is undefined for the first one.
 * @returns Every object, and the snapshot's resourceVersion.
 */
export async function listInPages<T>(
  page: (cont: string | undefined, limit: number) => Promise<ObjectList<T>>,
  limit = LIST_PAGE_SIZE,
): Promise<ObjectList<T>> {
  for (;;) {
    const items: T[] = [];
    let resourceVersion: string | undefined;
    let cont: string | undefined;
    try {
      do {
        const next = await page(cont, limit);
        resourceVersion ??= next.metadata?.resourceVersion;
        for (const item of next.items) items.push(item);
        cont = next.metadata?._continue || undefined;
      } while (cont);
    } catch (error) {
      if (cont !== undefined && apiStatus(error) === 410) continue;
      throw error;
    }
    return { metadata: { resourceVersion }, items };
  }
}

/**
 * An informer (not started) of the pods in `namespace` that match `selector`: its state from a
 * streaming watch-list ({@linkcode WatchListInformer}), else from a list in pages
 * ({@linkcode listInPages}); watches ended by the server ({@linkcode ServerTimeoutWatch}).
 */
export function watchPods(
  kc: KubeConfig,
  namespace: string,
  selector: string,
): WatchListInformer<V1Pod> {
  const core = kc.makeApiClient(CoreV1Api);
  return new WatchListInformer<V1Pod>({
    path: `/api/v1/namespaces/${namespace}/pods`,
    watch: new ServerTimeoutWatch(kc),
    list: () =>
      listInPages((_continue, limit) =>
        core.listNamespacedPod({ namespace, labelSelector: selector, limit, _continue })
      ),
    labelSelector: selector,
  });
}

/** An informer (not started) of the Jobs in `namespace` that match `selector`; see {@linkcode watchPods}. */
export function watchJobs(
  kc: KubeConfig,
  namespace: string,
  selector: string,
): WatchListInformer<V1Job> {
  const batch = kc.makeApiClient(BatchV1Api);
  return new WatchListInformer<V1Job>({
    path: `/apis/batch/v1/namespaces/${namespace}/jobs`,
    watch: new ServerTimeoutWatch(kc),
    list: () =>
      listInPages((_continue, limit) =>
        batch.listNamespacedJob({ namespace, labelSelector: selector, limit, _continue })
      ),
    labelSelector: selector,
  });
}
