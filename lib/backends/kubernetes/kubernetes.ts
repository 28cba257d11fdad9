/**
 * The Kubernetes backend: one Indexed Job per batch of attempts, pods of
 * the stock Deno image (or a kubeface worker image), watched until every
 * attempt is accounted for. Jobs keep running without the master; a new
 * master with the same job key attaches to them.
 *
 * @module
 */

import { BatchV1Api, CoreV1Api, KubeConfig, type V1Pod } from "@kubernetes/client-node";
import type { RunMap } from "../../format/attempt.ts";
import { JobLayout } from "../../format/layout.ts";
import { readJson } from "../../format/json.ts";
import type { Storage } from "../../storage/storage.ts";
import type { Backend, BackendEvent, BackendSession, JobContext, WorkerLog } from "../backend.ts";
import { BackendError, errorMessage } from "../../errors.ts";
import { apiError, whereOf } from "./api_errors.ts";
import { CONTAINER } from "./job_spec.ts";
import { JOB_LABEL, jobLabel, RUN_LABEL } from "./names.ts";
import {
  checkKubernetesOptions,
  KUBERNETES_DEFAULTS,
  type KubernetesBackendOptions,
  templatePatchOf,
} from "./options.ts";
import { loadTemplatePatchReader } from "./template_patch.ts";
import { storeRuntime } from "./runtime.ts";
import { KubernetesSession, type SessionContext } from "./session.ts";
import { WarmKubernetesSession } from "./warm_session.ts";

// This module loads the Kubernetes client anyway, so a patch given as YAML text costs nothing more.
await loadTemplatePatchReader();

/**
 * Check that pods can reach a storage: only Google Cloud Storage, which
 * every pod reaches the same way; a local directory is this machine's.
 *
 * @throws {BackendError} The storage is not `gs://`.
 */
export function checkPodStorage(url: string): void {
  if (url.startsWith("gs://")) return;
  throw new BackendError(
    `Cannot run on Kubernetes with storage '${url}': pods cannot reach a directory of this machine; use Google Cloud Storage, e.g. --storage gs://BUCKET/PREFIX (or KUBEFACE_STORAGE=gs://BUCKET/PREFIX)`,
  );
}

/** Run attempts as pods of Kubernetes Jobs. */
export class KubernetesBackend implements Backend {
  readonly name = "kubernetes";
  /** Pods run on without the master; a new master with the same key attaches. */
  readonly keepsRunning = "Kubernetes Jobs";
  readonly #options: KubernetesBackendOptions;
  #kubeConfig: KubeConfig | undefined;

  /**
   * Create the backend; options are checked now, the cluster is reached
   * when a job opens. An already loaded `kubeConfig` (built in code, or
   * wrapped to observe calls) replaces `kubeconfig` and `context`.
   *
   * @throws {TypeError} An option is malformed.
   * @throws {RangeError} A number option is out of range.
   */
  constructor(options: KubernetesBackendOptions = {}, kubeConfig?: KubeConfig) {
    checkKubernetesOptions(options);
    // A patch given as text is read once, here.
    this.#options = typeof options.podTemplatePatch === "string"
      ? { ...options, podTemplatePatch: templatePatchOf(options) }
      : options;
    this.#kubeConfig = kubeConfig;
  }

  /** The loaded kubeconfig, with the chosen context. */
  kubeConfig(): KubeConfig {
    if (this.#kubeConfig) return this.#kubeConfig;
    const kc = new KubeConfig();
    try {
      if (this.#options.kubeconfig) kc.loadFromFile(this.#options.kubeconfig);
      else kc.loadFromDefault();
    } catch (error) {
      throw new TypeError(
        `Cannot read the kubeconfig '${
          this.#options.kubeconfig ?? "$KUBECONFIG or ~/.kube/config"
        }': ${errorMessage(error)}; pass --kubeconfig or set KUBECONFIG`,
        { cause: error },
      );
    }
    if (this.#options.context) {
      if (!kc.getContexts().some((c) => c.name === this.#options.context)) {
        throw new TypeError(
          `Cannot use context '${this.#options.context}': the kubeconfig has ${
            kc.getContexts().map((c) => `'${c.name}'`).join(", ") || "no contexts"
          }`,
        );
      }
      kc.setCurrentContext(this.#options.context);
    }
    if (!kc.getCurrentCluster()) {
      throw new TypeError(
        "Cannot reach Kubernetes: the kubeconfig has no current cluster; set KUBECONFIG or pass --kubeconfig and --context",
      );
    }
    this.#kubeConfig = kc;
    return kc;
  }

  /** The namespace Jobs go to. */
  namespace(): string {
    const kc = this.kubeConfig();
    return this.#options.namespace ?? kc.getContextObject(kc.getCurrentContext())?.namespace ??
      "default";
  }

  /** Only Google Cloud Storage: pods cannot reach a directory of this machine. */
  checkStorage(url: string): void {
    checkPodStorage(url);
  }

  async open(job: JobContext, onEvent: (event: BackendEvent) => void): Promise<BackendSession> {
    checkPodStorage(job.storage.url); // before anything is created
    const kubeConfig = this.kubeConfig();
    const runtime = this.#options.workerImage ? undefined : await storeRuntime(job.storage);
    const ctx: SessionContext = {
      job,
      options: this.#options,
      kubeConfig,
      namespace: this.namespace(),
      runtime,
      onEvent,
    };
    return this.#options.warm
      ? await WarmKubernetesSession.open(ctx)
      : await KubernetesSession.open(ctx);
  }

  async cleanup(jobKey: string): Promise<string[]> {
    const kc = this.kubeConfig();
    const batch = kc.makeApiClient(BatchV1Api);
    const namespace = this.namespace();
    const where = whereOf(kc, namespace);
    let names: string[];
    try {
      names = (await batch.listNamespacedJob({
        namespace,
        labelSelector: `${JOB_LABEL}=${jobLabel(jobKey)}`,
      })).items.flatMap((j) => (j.metadata?.name ? [j.metadata.name] : []));
    } catch (error) {
      throw apiError(error, "list Jobs", where);
    }
    const lines: string[] = [];
    for (const name of names) {
      try {
        await batch.deleteNamespacedJob({ name, namespace, propagationPolicy: "Background" });
        lines.push(`deleted Kubernetes Job ${namespace}/${name} and its pods`);
      } catch (error) {
        throw apiError(error, `delete Job ${name}`, where);
      }
    }
    return lines;
  }

  async *logs(storage: Storage, jobKey: string, task?: number): AsyncIterable<WorkerLog> {
    const kc = this.kubeConfig();
    const core = kc.makeApiClient(CoreV1Api);
    const namespace = this.namespace();
    const where = whereOf(kc, namespace);
    let pods: V1Pod[];
    try {
      pods = (await core.listNamespacedPod({
        namespace,
        labelSelector: `${JOB_LABEL}=${jobLabel(jobKey)}`,
      })).items;
    } catch (error) {
      throw apiError(error, "list pods", where);
    }
    const layout = new JobLayout(jobKey);
    const maps = new Map<string, RunMap | undefined>();
    // Pods of this storage's per-task Jobs (a warm pod has no run map), and those yielded.
    let ours = 0;
    let found = 0;
    for (
      const pod of pods.sort((a, b) =>
        (a.metadata?.name ?? "").localeCompare(b.metadata?.name ?? "")
      )
    ) {
      const run = pod.metadata?.labels?.[RUN_LABEL];
      const index = Number(pod.metadata?.labels?.["batch.kubernetes.io/job-completion-index"]);
      if (!run) continue;
      if (!maps.has(run)) {
        // Undefined when the pod belongs to a job of the same key in another storage.
        maps.set(run, await readJson<RunMap>(storage, layout.run(run)).catch(() => undefined));
      }
      const map = maps.get(run);
      if (map) ours++;
      const spec = map?.attempts[index];
      if (!spec || (task !== undefined && spec.task !== task)) continue;
      let text: string;
      try {
        text = await core.readNamespacedPodLog({
          name: pod.metadata!.name!,
          namespace,
          container: CONTAINER,
        });
      } catch (error) {
        throw apiError(error, `read the log of pod ${pod.metadata?.name}`, where);
      }
      yield { task: spec.task, attempt: `${spec.attempt} (pod ${pod.metadata?.name})`, text };
      found++;
    }
    if (found === 0 && (pods.length === 0 || ours > 0)) {
      throw new BackendError(
        `No pod of ${
          task === undefined ? "" : `task ${task} of `
        }job '${jobKey}' is left in namespace ${namespace} at ${where.server}: a pod's log goes ` +
          `with the pod, which Kubernetes deletes with its Job (--ttl-after-finished after the Job ` +
          `ends, ${KUBERNETES_DEFAULTS.ttlSecondsAfterFinished} s by default; kubeface cleanup) or ` +
          `sooner through the pod garbage collector (once the cluster holds more ended pods than ` +
          `kube-controller-manager's --terminated-pod-gc-threshold, 12,500 by default, the oldest ` +
          `go first). Run the job with a longer --ttl-after-finished, or have the task write what ` +
          `it must keep into its result`,
      );
    }
  }
}
