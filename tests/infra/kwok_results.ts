/**
 * The worker of KWOK pods, for tests only. KWOK pods run no code, so this helper does what a
 * worker in the pod would: for each kubeface pod Running on a KWOK node it reads the run map
 * (which attempt the pod's index runs), the task's input, computes the value, and stores the
 * result record through lib's own record code (`encodeRecord`, the `ResultHeader` of
 * lib/format/manifest.ts) at `results/<task>/<attempt>.ok` (or `.error` when `compute` throws).
 * Only then does it mark the pod with `kubeface.dev/kwok-result`, and only that mark lets kwok's
 * pod-complete stage end the pod (see cluster/kwok_config.ts): the master never sees a KWOK pod
 * succeed before its result is stored, as with a real worker, which stores before it exits.
 *
 * @module
 */

import {
  CoreV1Api,
  type KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type V1Pod,
} from "@kubernetes/client-node";
import type { RunMap } from "../../lib/format/attempt.ts";
import { readJson } from "../../lib/format/json.ts";
import { JobLayout } from "../../lib/format/layout.ts";
import type { InputHeader, Manifest, ResultHeader } from "../../lib/format/manifest.ts";
import { encodeRecord, encodeValue, readRecord, recordBody } from "../../lib/format/records.ts";
import { JOB_KEY_ANNOTATION, RUN_LABEL } from "../../lib/backends/kubernetes/names.ts";
import type { WatchListInformer } from "../../lib/backends/kubernetes/informer.ts";
import { watchPods } from "../../lib/backends/kubernetes/watch.ts";
import type { Storage } from "../../lib/storage/storage.ts";
import { errorMessage } from "../../lib/errors.ts";
import { KWOK_RESULT_ANNOTATION } from "./cluster/kwok_config.ts";
import { KWOK_NODE_PREFIX } from "./cluster/kwok.ts";

const INDEX_LABEL = "batch.kubernetes.io/job-completion-index";

/** Options of {@link KwokResultWriter.start}. */
export interface KwokResultWriterOptions {
  /** An admin configuration (the writer patches pods, which the master's user may not). */
  kubeConfig: KubeConfig;
  /** The namespace of the jobs' pods. */
  namespace: string;
  /** The jobs' storage (opened by the test). */
  storage: Storage;
  /**
   * What the task computes from its input; a throw stores an error result (the pod then fails
   * with exit code 3, as a worker's does).
   * @default {the input itself}
   */
  compute?: (input: unknown, task: number) => unknown;
  /**
   * How long each pod "runs" before its result is stored, in milliseconds. A pod deleted or
   * failed meanwhile stores nothing, like a worker killed mid-task.
   * @default 0
   */
  runtimeMs?: number;
  /** Pods handled at once. @default 32 */
  concurrency?: number;
  /** Receives a line per problem (a result that could not be stored). @default () => {} */
  onProblem?: (line: string) => void;
}

/** Stores the results of kubeface pods on KWOK nodes, as their workers would. */
export class KwokResultWriter implements AsyncDisposable {
  /** Results stored, by `task/attempt`: how often each was written (always 1 unless a bug). */
  readonly stored = new Map<string, number>();
  /** Pods whose result already existed (a replacement pod of an attempt that had stored it). */
  skipped = 0;
  /** Distinct pods seen Running on a KWOK node. */
  podsSeen = 0;
  /** When the last new pod was seen Running (`Date.now()`). */
  lastPodSeenAt = NaN;
  /** When the last result was stored (`Date.now()`). */
  lastStoredAt = NaN;
  readonly #options: KwokResultWriterOptions;
  readonly #core: CoreV1Api;
  readonly #live = new Map<string, V1Pod>();
  readonly #seen = new Set<string>();
  readonly #queue: string[] = [];
  readonly #runs = new Map<string, Promise<RunMap>>();
  readonly #manifests = new Map<string, Promise<Manifest>>();
  #active = 0;
  #informer: WatchListInformer<V1Pod> | undefined;
  #stopped = false;
  readonly #idle = new Set<() => void>();
  readonly #lostNodes = new Set<string>();
  readonly #lostPods = new Set<string>();
  /** Results being stored, by pod. */
  readonly #writes = new Map<V1Pod, Promise<unknown>>();

  private constructor(options: KwokResultWriterOptions) {
    this.#options = options;
    this.#core = options.kubeConfig.makeApiClient(CoreV1Api);
  }

  /**
   * Watch the namespace's kubeface pods and store a result for each that runs on a KWOK node.
   *
   * @param options Cluster, namespace, storage and what the tasks compute.
   * @returns The running writer; dispose of it (or call `stop`) to end the watch.
   */
  static async start(options: KwokResultWriterOptions): Promise<KwokResultWriter> {
    const writer = new KwokResultWriter(options);
    const { namespace, kubeConfig } = options;
    const informer = watchPods(kubeConfig, namespace, "app.kubernetes.io/managed-by=kubeface");
    informer.on("add", (pod) => writer.#onPod(pod, false));
    informer.on("update", (pod) => writer.#onPod(pod, false));
    informer.on("delete", (pod) => writer.#onPod(pod, true));
    informer.on("error", () => {
      if (!writer.#stopped) setTimeout(() => informer.start().catch(() => {}), 500);
    });
    writer.#informer = informer;
    await informer.start();
    return writer;
  }

  /**
   * Treat a node as gone (deleted or drained by the test): its pods' workers die with it, so none
   * of them stores a result from now on, as no worker on a vanished machine would. Call it before
   * the disruption; it resolves once a result a pod of the node was storing is stored, as a kubelet
   * kills a worker (and so ends its pod) only after the write it was making.
   *
   * @param name The node's name.
   */
  async loseNode(name: string): Promise<void> {
    this.#lostNodes.add(name);
    await this.#writesSettled((pod) => pod.spec?.nodeName === name);
  }

  /**
   * Treat a pod as stopped (about to be evicted by the test): its worker stores nothing from now
   * on. Resolves as {@link loseNode} does.
   *
   * @param name The pod's name.
   */
  async losePod(name: string): Promise<void> {
    this.#lostPods.add(name);
    await this.#writesSettled((pod) => pod.metadata?.name === name);
  }

  /**
   * Evict a pod through the Eviction API, its worker told first ({@link losePod}): a test's
   * eviction as a kubelet carries it out.
   *
   * @param name The pod's name, in the writer's namespace.
   */
  async evict(name: string): Promise<void> {
    await this.losePod(name);
    const { namespace } = this.#options;
    await this.#core.createNamespacedPodEviction({
      name,
      namespace,
      body: { apiVersion: "policy/v1", kind: "Eviction", metadata: { name, namespace } },
    });
  }

  #isLost(pod: V1Pod): boolean {
    return this.#lostNodes.has(pod.spec?.nodeName ?? "") ||
      this.#lostPods.has(pod.metadata?.name ?? "");
  }

  async #writesSettled(of: (pod: V1Pod) => boolean): Promise<void> {
    await Promise.allSettled([...this.#writes].filter(([pod]) => of(pod)).map(([, w]) => w));
  }

  /** Pods waiting for or getting their result now. */
  get pending(): number {
    return this.#queue.length + this.#active;
  }

  #onPod(pod: V1Pod, deleted: boolean): void {
    const uid = pod.metadata?.uid;
    if (!uid) return;
    const running = !deleted && pod.status?.phase === "Running" &&
      !pod.metadata?.deletionTimestamp &&
      (pod.spec?.nodeName ?? "").startsWith(KWOK_NODE_PREFIX);
    if (!running) {
      this.#live.delete(uid);
      return;
    }
    this.#live.set(uid, pod);
    if (this.#seen.has(uid) || pod.metadata?.annotations?.[KWOK_RESULT_ANNOTATION]) return;
    this.#seen.add(uid);
    this.podsSeen++;
    this.lastPodSeenAt = Date.now();
    this.#queue.push(uid);
    this.#pump();
  }

  #pump(): void {
    const limit = this.#options.concurrency ?? 32;
    while (!this.#stopped && this.#active < limit && this.#queue.length > 0) {
      const uid = this.#queue.shift()!;
      this.#active++;
      this.#handle(uid)
        .catch((error) =>
          this.#options.onProblem?.(`Cannot store the result of pod ${uid}: ${errorMessage(error)}`)
        )
        .finally(() => {
          this.#active--;
          this.#pump();
          if (this.pending === 0) { for (const resolve of this.#idle) resolve(); }
        });
    }
  }

  async #handle(uid: string): Promise<void> {
    const runtimeMs = this.#options.runtimeMs ?? 0;
    if (runtimeMs > 0) await new Promise((resolve) => setTimeout(resolve, runtimeMs));
    const pod = this.#live.get(uid);
    // Gone while it "ran", or its node vanished: nothing stored, as with a worker.
    if (!pod || this.#stopped || this.#isLost(pod)) return;
    const { storage, namespace } = this.#options;
    const key = pod.metadata?.annotations?.[JOB_KEY_ANNOTATION];
    const run = pod.metadata?.labels?.[RUN_LABEL];
    const index = Number(pod.metadata?.labels?.[INDEX_LABEL]);
    if (!key || !run || !Number.isInteger(index)) return;
    const layout = new JobLayout(key);
    if (!this.#runs.has(run)) this.#runs.set(run, readJson<RunMap>(storage, layout.run(run)));
    if (!this.#manifests.has(key)) {
      this.#manifests.set(key, readJson<Manifest>(storage, layout.manifest, "manifest"));
    }
    const spec = (await this.#runs.get(run)!).attempts[index];
    if (!spec) throw new Error(`index ${index} is not in the run map of ${run}`);
    const { task, attempt } = spec;
    let status: "ok" | "error";
    if (await storage.stat(layout.result(task, attempt, "ok"))) {
      this.skipped++;
      status = "ok";
    } else {
      const manifest = await this.#manifests.get(key)!;
      const { value: input } = await readRecord<InputHeader>(
        await storage.get(layout.input(task)),
        `input of task ${task}`,
      );
      const startedAt = new Date();
      let value: unknown;
      let error: ResultHeader["error"];
      try {
        value = (this.#options.compute ?? ((x) => x))(input, task);
      } catch (thrown) {
        const e = thrown instanceof Error ? thrown : new Error(String(thrown));
        error = { name: e.name, message: e.message, stack: e.stack ?? "" };
      }
      const endedAt = new Date();
      status = error ? "error" : "ok";
      const header: Omit<ResultHeader, "encoding" | "size" | "crc32c"> = {
        kind: "result",
        status,
        job: key,
        task,
        attempt,
        host: pod.metadata?.name ?? "",
        startedAt: startedAt.toISOString(),
        endedAt: endedAt.toISOString(),
        durationMs: endedAt.getTime() - startedAt.getTime(),
        rssBytes: 0,
        deno: Deno.version.deno,
        ...(manifest.id ? { manifest: manifest.id } : {}),
        ...(error ? { error } : {}),
      };
      const encoded = error ? undefined : encodeValue(value, `result of task ${task}`);
      // Stopped while it read its input: its worker died before it could store anything.
      if (this.#isLost(pod) || !this.#live.has(uid)) return;
      const write = storage.put(
        layout.result(task, attempt, status),
        recordBody(encodeRecord(header, encoded)),
      );
      this.#writes.set(pod, write);
      await write.finally(() => this.#writes.delete(pod));
      const id = `${task}/${attempt}`;
      this.stored.set(id, (this.stored.get(id) ?? 0) + 1);
      this.lastStoredAt = Date.now();
    }
    await this.#core.patchNamespacedPod(
      {
        name: pod.metadata!.name!,
        namespace,
        body: { metadata: { annotations: { [KWOK_RESULT_ANNOTATION]: status } } },
      },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    ).catch((error) => {
      // A pod deleted meanwhile needs no mark.
      if (!/404|not found/i.test(errorMessage(error))) throw error;
    });
  }

  /** Resolve once no pod waits for its result (new ones may still come). */
  idle(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.#idle.delete(done);
        resolve();
      };
      this.#idle.add(done);
    });
  }

  /** Stop watching; results being stored are finished first. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#queue.length = 0;
    await this.#informer?.stop().catch(() => {});
    while (this.#active > 0) await new Promise((resolve) => setTimeout(resolve, 20));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}
