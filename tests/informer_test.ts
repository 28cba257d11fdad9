/**
 * The informer of kubeface's sessions against the real apiserver: its state from a streaming
 * watch-list (or, where refused or turned off, a list in pages), then changes; watches the
 * server ends resumed without a lost or repeated event.
 *
 * @module
 */

import assert from "node:assert/strict";
import { CoreV1Api, type KubeConfig, type V1ConfigMap } from "@kubernetes/client-node";
import { dropMissing, WatchListInformer } from "../lib/backends/kubernetes/informer.ts";
import { listInPages, ServerTimeoutWatch } from "../lib/backends/kubernetes/watch.ts";
import { clusterTest, pollUntil, withNamespace } from "./infra/cluster/cluster.ts";

type Params = Record<string, string | number | boolean | undefined>;

/** A `ServerTimeoutWatch` that records the query of each watch request it makes. */
class RecordingWatch extends ServerTimeoutWatch {
  readonly requests: Params[] = [];

  override watch(
    path: string,
    queryParams: Params,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    this.requests.push({ ...queryParams });
    return super.watch(path, queryParams, callback, done);
  }
}

/** An informer of the namespace's config maps labelled `informed=yes`, its events in order. */
function informerOf(
  kc: KubeConfig,
  namespace: string,
  options: { watchList: boolean; timeoutSeconds?: number },
) {
  const core = kc.makeApiClient(CoreV1Api);
  const watch = new RecordingWatch(kc, options.timeoutSeconds);
  let lists = 0;
  const informer = new WatchListInformer<V1ConfigMap>({
    path: `/api/v1/namespaces/${namespace}/configmaps`,
    watch,
    list: () => {
      lists++;
      return listInPages((_continue, limit) =>
        core.listNamespacedConfigMap({
          namespace,
          labelSelector: "informed=yes",
          limit,
          _continue,
        })
      );
    },
    labelSelector: "informed=yes",
    watchList: options.watchList,
    ...(options.timeoutSeconds ? { initialTimeoutSeconds: options.timeoutSeconds } : {}),
  });
  const events: string[] = [];
  for (const verb of ["add", "update", "delete"] as const) {
    informer.on(verb, (cm) => events.push(`${verb} ${cm.metadata?.name} ${cm.data?.v ?? ""}`));
  }
  const errors: unknown[] = [];
  informer.on("error", (error) => errors.push(error));
  return { informer, watch, events, errors, lists: () => lists };
}

for (const watchList of [true, false]) {
  const how = watchList ? "a streaming watch-list" : "a list in pages, then a watch";
  clusterTest(
    `an informer takes its state from ${how}, before start() resolves, then each change once`,
    (cluster) =>
      withNamespace(cluster, "informer", async (namespace) => {
        const core = cluster.kubeConfig.makeApiClient(CoreV1Api);
        const put = (name: string, v: string, informed = "yes") =>
          core.createNamespacedConfigMap({
            namespace,
            body: { metadata: { name, labels: { informed } }, data: { v } },
          });
        for (const name of ["a", "b", "c"]) await put(name, "1");
        await put("other", "1", "no");
        const { informer, watch, events, errors, lists } = informerOf(
          cluster.kubeConfig,
          namespace,
          { watchList },
        );
        try {
          await informer.start();
          assert.deepEqual(events.toSorted(), ["add a 1", "add b 1", "add c 1"]);
          assert.equal(lists(), watchList ? 0 : 1, "a watch-list needs no list request");
          assert.equal(watch.requests.length, 1);
          assert.equal(watch.requests[0]!.sendInitialEvents, watchList ? true : undefined);
          assert.equal(informer.watchList, watchList);

          events.length = 0;
          await put("d", "1");
          await core.patchNamespacedConfigMap({
            name: "a",
            namespace,
            body: [{ op: "replace", path: "/data/v", value: "2" }],
          });
          await core.deleteNamespacedConfigMap({ name: "b", namespace });
          await put("other-2", "1", "no");
          await pollUntil("the three changes", () =>
            Promise.resolve(events.length >= 3 || undefined));
          assert.deepEqual(events, ["add d 1", "update a 2", "delete b 1"]);
          assert.deepEqual(
            informer.list().map((cm) =>
              cm.metadata?.name
            ).sort(),
            ["a", "c", "d"],
          );
          assert.deepEqual(errors, []);
        } finally {
          await informer.stop();
        }
      }),
  );
}

clusterTest(
  "an informer resumes each watch the server ends from where it was: no change lost, none repeated",
  (cluster) =>
    withNamespace(cluster, "informer-resume", async (namespace) => {
      const core = cluster.kubeConfig.makeApiClient(CoreV1Api);
      // The server ends each watch after 1 s, the first (the watch-list) too.
      const { informer, watch, events, errors } = informerOf(cluster.kubeConfig, namespace, {
        watchList: true,
        timeoutSeconds: 1,
      });
      try {
        await informer.start();
        const expected: string[] = [];
        for (let i = 0; i < 8; i++) {
          await core.createNamespacedConfigMap({
            namespace,
            body: { metadata: { name: `m${i}`, labels: { informed: "yes" } }, data: { v: "1" } },
          });
          expected.push(`add m${i} 1`);
          await new Promise((resolve) => setTimeout(resolve, 400));
        }
        await pollUntil("every change", () => Promise.resolve(events.length >= 8 || undefined));
        await new Promise((resolve) => setTimeout(resolve, 1500)); // room for a repeat
        assert.deepEqual(events, expected);
        const resumed = watch.requests.slice(1);
        assert.ok(resumed.length >= 2, `${watch.requests.length} watch requests`);
        for (const request of resumed) {
          assert.equal(request.sendInitialEvents, undefined, "resumed, not taken again");
          assert.match(String(request.resourceVersion), /^\d+$/);
        }
        assert.deepEqual(errors, []);
      } finally {
        await informer.stop();
      }
    }),
);

clusterTest(
  "an informer stopped and started again resumes from its last change: changes meanwhile come once",
  (cluster) =>
    withNamespace(cluster, "informer-restart", async (namespace) => {
      const core = cluster.kubeConfig.makeApiClient(CoreV1Api);
      await core.createNamespacedConfigMap({
        namespace,
        body: { metadata: { name: "kept", labels: { informed: "yes" } }, data: { v: "1" } },
      });
      await core.createNamespacedConfigMap({
        namespace,
        body: { metadata: { name: "gone", labels: { informed: "yes" } }, data: { v: "1" } },
      });
      const { informer, events, errors } = informerOf(cluster.kubeConfig, namespace, {
        watchList: true,
      });
      try {
        await informer.start();
        await informer.stop();
        events.length = 0;
        await core.deleteNamespacedConfigMap({ name: "gone", namespace });
        await informer.start();
        await pollUntil("the delete", () => Promise.resolve(events.length >= 1 || undefined));
        await new Promise((resolve) => setTimeout(resolve, 1000)); // room for a repeated add
        assert.deepEqual(events, ["delete gone 1"]);
        assert.deepEqual(informer.list().map((cm) => cm.metadata?.name), ["kept"]);
        assert.deepEqual(errors, []);
      } finally {
        await informer.stop();
      }
    }),
);

Deno.test("a new state drops the objects it no longer holds, calling back once for each", () => {
  const object = (name: string) => ({ metadata: { name, namespace: "ns" } });
  const cache = new Map(["a", "b", "c"].map((name) => [`ns/${name}`, object(name)]));
  const deleted: string[] = [];
  dropMissing(cache, new Set(["ns/b", "ns/d"]), (gone) => deleted.push(gone.metadata.name));
  assert.deepEqual(deleted, ["a", "c"]);
  assert.deepEqual([...cache.keys()], ["ns/b"]);
});
