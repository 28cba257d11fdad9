/**
 * The Kubernetes Job of one batch of attempts: an Indexed Job whose index i
 * runs the attempt the run's index map (`jobs/<key>/runs/<name>.json`)
 * names; crashed pods are restarted per index, a task error (exit code 3)
 * fails its index at once, a disrupted pod too (kubeface reruns it in a new
 * Job, not counted against retries), and the finished
 * Job deletes itself.
 *
 * @module
 */

import type { V1Container, V1Job, V1PodTemplateSpec, V1Toleration } from "@kubernetes/client-node";
import { IMAGE_WORKER_FILES } from "../../image/context.ts";
import { storageWorkerEnv } from "../../storage/worker_env.ts";
import { EXIT_TASK_ERROR } from "../../worker/exit_codes.ts";
import { denoRunFlags, workerEnv, type WorkerLaunch } from "../../worker/launch.ts";
import type { JobContext } from "../backend.ts";
import {
  CONTAINER,
  JOB_KEY_ANNOTATION,
  JOB_LABEL,
  jobLabel,
  MANAGED_BY,
  RUN_LABEL,
} from "./names.ts";
import { KUBERNETES_DEFAULTS, type KubernetesBackendOptions, templatePatchOf } from "./options.ts";
import { bootstrapUrl, type Runtime } from "./runtime.ts";
import { terminationGraceSeconds, withSpot } from "./spot.ts";
import { patchPodTemplate } from "./template_patch.ts";

export { CONTAINER } from "./names.ts";
/** Where the pod's writable scratch volume is mounted. */
const SCRATCH = "/tmp";

/** Everything one batch's Job is made from. */
export interface JobSpecInput {
  job: JobContext;
  options: KubernetesBackendOptions;
  namespace: string;
  /** Name of the Kubernetes Job (and of its index map). */
  name: string;
  /** Number of attempts (indexes). */
  completions: number;
  /** The stored runtime the stock image's bootstrap downloads; none with a worker image. */
  runtime: Runtime | undefined;
  /**
   * A pool of warm pods (`completions` of them), each running offered
   * attempts until the job has none left: no per-pod deadline (the master
   * enforces time limits per attempt), and each pod knows its name.
   *
   * @default {false: each index runs the attempt of the run map}
   */
  pool?: boolean;
}

/** The worker container's command and the environment that tells it what to run. */
function worker(launch: WorkerLaunch, runtime: Runtime | undefined) {
  const settings = Object.entries(workerEnv(launch)).map(([name, value]) => ({ name, value }));
  if (!runtime) {
    // A worker image: every dependency is cached in it, and its HOME and DENO_DIR are set.
    return { command: ["deno", ...denoRunFlags(launch, IMAGE_WORKER_FILES)], env: settings };
  }
  return {
    command: ["deno", ...denoRunFlags(launch, { worker: bootstrapUrl() })],
    env: [
      ...settings,
      {
        name: "KUBEFACE_RUNTIME",
        value:
          `${runtime.worker.key}@${runtime.worker.sha256},${runtime.thread.key}@${runtime.thread.sha256}`,
      },
      // The stock image's Deno cache and home are on the read-only root.
      { name: "DENO_DIR", value: `${SCRATCH}/deno-dir` },
      { name: "HOME", value: SCRATCH },
    ],
  };
}

/**
 * Requests and limits. A request not given is the default (1 CPU, 1Gi),
 * unless only its limit is given: Kubernetes then requests the limit.
 * `null` sets none. The memory limit is the memory request unless given.
 */
function resources(o: KubernetesBackendOptions): V1Container["resources"] {
  const requests: Record<string, string> = {};
  const limits: Record<string, string> = {};
  const cpu = o.cpu !== undefined ? o.cpu : o.cpuLimit ? undefined : KUBERNETES_DEFAULTS.cpu;
  const memory = o.memory !== undefined
    ? o.memory
    : o.memoryLimit
    ? undefined
    : KUBERNETES_DEFAULTS.memory;
  if (cpu) requests.cpu = cpu;
  if (memory) requests.memory = memory;
  if (o.cpuLimit) limits.cpu = o.cpuLimit;
  const memoryLimit = o.memoryLimit === undefined ? memory : o.memoryLimit;
  if (memoryLimit) limits.memory = memoryLimit;
  if (o.gpus) limits["nvidia.com/gpu"] = String(o.gpus);
  return {
    ...(Object.keys(requests).length ? { requests } : {}),
    ...(Object.keys(limits).length ? { limits } : {}),
  };
}

/** Build the Job. */
export function jobSpec(input: JobSpecInput): V1Job {
  const { job, name, completions, runtime } = input;
  const o = withSpot(input.options);
  const labels = { ...o.labels, ...MANAGED_BY, [JOB_LABEL]: jobLabel(job.key), [RUN_LABEL]: name };
  const annotations = { ...o.annotations, [JOB_KEY_ANNOTATION]: job.key };
  const deadline = input.pool ? undefined : o.activeDeadlineSeconds ??
    (job.timeoutMs ? Math.ceil(job.timeoutMs / 1000) : undefined);
  const { command, env } = worker({
    storageUrl: job.storage.url,
    job: job.key,
    scratch: `${SCRATCH}/kubeface`,
    permissions: job.permissions,
    mode: input.pool ? { pool: true } : { run: name },
    graceMs: job.graceMs,
  }, runtime);
  const runAsUser = o.runAsUser ?? KUBERNETES_DEFAULTS.runAsUser;
  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: { name, namespace: input.namespace, labels, annotations },
    spec: {
      completionMode: "Indexed",
      completions,
      parallelism: Math.min(job.parallelism, completions),
      backoffLimitPerIndex: job.maxRetries,
      podFailurePolicy: {
        rules: [
          {
            action: "FailIndex",
            onExitCodes: { containerName: CONTAINER, operator: "In", values: [EXIT_TASK_ERROR] },
          },
          // A disrupted pod (eviction, drain, node loss, preemption) ends its index, and kubeface
          // runs the task again in a new Job at once, not counted against maxRetries. Ignore
          // would let this Job replace it, but only after the Job's failure backoff (10 s and
          // more), which ignored failures still raise (kubernetes/kubernetes#130881).
          {
            action: "FailIndex",
            onPodConditions: [{ type: "DisruptionTarget", status: "True" }],
          },
        ],
      },
      ttlSecondsAfterFinished: o.ttlSecondsAfterFinished ??
        KUBERNETES_DEFAULTS.ttlSecondsAfterFinished,
      template: patched(o, {
        metadata: { labels, annotations },
        spec: {
          restartPolicy: "Never",
          automountServiceAccountToken: o.mountServiceAccountToken ??
            KUBERNETES_DEFAULTS.mountServiceAccountToken,
          ...(o.serviceAccount ? { serviceAccountName: o.serviceAccount } : {}),
          ...(deadline ? { activeDeadlineSeconds: deadline } : {}),
          terminationGracePeriodSeconds: terminationGraceSeconds(job),
          ...(o.nodeSelector ? { nodeSelector: { ...o.nodeSelector } } : {}),
          ...(o.tolerations
            ? { tolerations: o.tolerations.map((t) => ({ ...t }) as V1Toleration) }
            : {}),
          securityContext: {
            runAsNonRoot: true,
            runAsUser,
            runAsGroup: runAsUser,
            fsGroup: runAsUser,
            seccompProfile: { type: "RuntimeDefault" },
          },
          // Pods reach nothing through Services; their variables would only add noise.
          enableServiceLinks: false,
          volumes: [{
            name: "scratch",
            emptyDir: { sizeLimit: o.scratchSize ?? KUBERNETES_DEFAULTS.scratchSize },
          }],
          containers: [{
            name: CONTAINER,
            image: o.image ?? KUBERNETES_DEFAULTS.image,
            imagePullPolicy: o.imagePullPolicy ?? KUBERNETES_DEFAULTS.imagePullPolicy,
            command,
            env: [
              ...Object.entries(job.env).map(([n, value]) => ({ name: n, value })),
              ...Object.entries(storageWorkerEnv(job.storage.url))
                .map(([n, value]) => ({ name: n, value })),
              ...env,
              ...(input.pool
                ? [
                  { name: "KUBEFACE_POD", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
                  { name: "KUBEFACE_POOL_TIMINGS", value: JSON.stringify(o.warmTimings ?? {}) },
                ]
                : []),
              { name: "NO_COLOR", value: "1" },
            ],
            resources: resources(o),
            securityContext: {
              allowPrivilegeEscalation: false,
              readOnlyRootFilesystem: true,
              capabilities: { drop: ["ALL"] },
            },
            volumeMounts: [{ name: "scratch", mountPath: SCRATCH }],
          }],
        },
      }),
    },
  };
}

/** The template with the user's `podTemplatePatch` applied (see template_patch.ts). */
function patched(o: KubernetesBackendOptions, template: V1PodTemplateSpec): V1PodTemplateSpec {
  const patch = templatePatchOf(o);
  return patch ? patchPodTemplate(template, patch, CONTAINER) : template;
}
