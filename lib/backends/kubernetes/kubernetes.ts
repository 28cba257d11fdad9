/**
 * The Kubernetes backend: one Indexed Job per batch of attempts, pods of
 * the stock Deno image (or a kubeface worker image), watched until every
 * attempt is accounted for. Jobs keep running without the master; a new
 * master with the same job key attaches to them.
 *
 * @module
 */

import { BatchV1Api, CoreV1Api, KubeConfig, type V1Pod } from "@kubernetes/client-node";
import { JobLayout } from "../../job/layout.ts";
import { openStorage, readJson } from "../../storage/storage.ts";
import type { RunMap } from "../../worker/run.ts";
import type { Backend, BackendEvent, BackendSession, JobContext, WorkerLog } from "../backend.ts";
import { apiError, whereOf } from "./api_errors.ts";
import { CONTAINER } from "./job_spec.ts";
import { JOB_LABEL, jobLabel, RUN_LABEL } from "./names.ts";
import { checkKubernetesOptions, type KubernetesBackendOptions } from "./options.ts";
import { storeRuntime } from "./runtime.ts";
import { KubernetesSession } from "./session.ts";

/** Run attempts as pods of Kubernetes Jobs. */
export class KubernetesBackend implements Backend {
  readonly name = "kubernetes";
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
    this.#options = options;
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
        }': ${
          error instanceof Error ? error.message : String(error)
        }; pass --kubeconfig or set KUBECONFIG`,
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

  async open(job: JobContext, onEvent: (event: BackendEvent) => void): Promise<BackendSession> {
    const kubeConfig = this.kubeConfig();
    const storage = await openStorage(job.storageUrl);
    try {
      const runtime = this.#options.workerImage
        ? { worker: { key: "", sha256: "" }, thread: { key: "", sha256: "" } }
        : await storeRuntime(storage);
      return await KubernetesSession.open({
        job,
        options: this.#options,
        kubeConfig,
        namespace: this.namespace(),
        storage,
        runtime,
        onEvent,
      });
    } catch (error) {
      await storage[Symbol.asyncDispose]();
      throw error;
    }
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

  async *logs(jobKey: string, task?: number): AsyncIterable<WorkerLog> {
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
    const maps = new Map<string, RunMap | undefined>();
    for (
      const pod of pods.sort((a, b) =>
        (a.metadata?.name ?? "").localeCompare(b.metadata?.name ?? "")
      )
    ) {
      const run = pod.metadata?.labels?.[RUN_LABEL];
      const index = Number(pod.metadata?.labels?.["batch.kubernetes.io/job-completion-index"]);
      const storageUrl = pod.spec?.containers?.find((c) => c.name === CONTAINER)?.env
        ?.find((e) => e.name === "KUBEFACE_STORAGE")?.value;
      if (!run || !storageUrl) continue;
      if (!maps.has(run)) {
        try {
          await using storage = await openStorage(storageUrl);
          maps.set(run, await readJson<RunMap>(storage, new JobLayout(jobKey).run(run)));
        } catch {
          maps.set(run, undefined);
        }
      }
      const spec = maps.get(run)?.attempts[index];
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
    }
  }
}
