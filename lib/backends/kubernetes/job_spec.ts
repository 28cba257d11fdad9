/**
 * The Kubernetes Job of one batch of attempts: an Indexed Job whose index i
 * runs the attempt the run's index map (`jobs/<key>/runs/<name>.json`)
 * names; crashed pods are restarted per index, a task error (exit code 3)
 * fails its index at once, disruptions are not counted, and the finished
 * Job deletes itself.
 *
 * @module
 */

import type { V1Container, V1Job, V1PodTemplateSpec, V1Toleration } from "@kubernetes/client-node";
import type { JobContext } from "../backend.ts";
import { EXIT_TASK_ERROR } from "../../worker/exit_codes.ts";
import { IMAGE_CONFIG, IMAGE_WORKER } from "../container_run.ts";
import { parsePermissions } from "../../permissions.ts";
import {
  CONTAINER,
  JOB_KEY_ANNOTATION,
  JOB_LABEL,
  jobLabel,
  MANAGED_BY,
  RUN_LABEL,
} from "./names.ts";
import { KUBERNETES_DEFAULTS, type KubernetesBackendOptions } from "./options.ts";
import { BOOTSTRAP, type Runtime } from "./runtime.ts";
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
  runtime: Runtime;
}

/** Environment variables passed from the master to every pod when set. */
const PASSED_ENV = ["STORAGE_EMULATOR_HOST", "GOOGLE_CLOUD_PROJECT"];

function env(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

function command(options: KubernetesBackendOptions): string[] {
  if (options.workerImage) {
    // The task thread inside still gets only the task's permissions.
    return [
      "deno",
      "run",
      "--no-check",
      "--cached-only",
      "--unstable-worker-options",
      `--config=${IMAGE_CONFIG}`,
      "--allow-all",
      IMAGE_WORKER,
    ];
  }
  return ["deno", "eval", "--unstable-worker-options", BOOTSTRAP];
}

function resources(o: KubernetesBackendOptions): V1Container["resources"] {
  const requests: Record<string, string> = {};
  const limits: Record<string, string> = {};
  if (o.cpu) requests.cpu = o.cpu;
  if (o.memory) requests.memory = o.memory;
  if (o.cpuLimit) limits.cpu = o.cpuLimit;
  const memoryLimit = o.memoryLimit ?? o.memory;
  if (memoryLimit) limits.memory = memoryLimit;
  if (o.gpus) limits["nvidia.com/gpu"] = String(o.gpus);
  return {
    ...(Object.keys(requests).length ? { requests } : {}),
    ...(Object.keys(limits).length ? { limits } : {}),
  };
}

/** Build the Job. */
export function jobSpec(input: JobSpecInput): V1Job {
  const { job, options: o, name, completions, runtime } = input;
  const labels = { ...o.labels, ...MANAGED_BY, [JOB_LABEL]: jobLabel(job.key), [RUN_LABEL]: name };
  const annotations = { ...o.annotations, [JOB_KEY_ANNOTATION]: job.key };
  const deadline = o.activeDeadlineSeconds ??
    (job.timeoutMs ? Math.ceil(job.timeoutMs / 1000) : undefined);
  const passed = PASSED_ENV.flatMap((n) => {
    const value = env(n);
    return value ? [{ name: n, value }] : [];
  });
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
          { action: "Ignore", onPodConditions: [{ type: "DisruptionTarget", status: "True" }] },
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
          volumes: [{ name: "scratch", emptyDir: {} }],
          containers: [{
            name: CONTAINER,
            image: o.image ?? KUBERNETES_DEFAULTS.image,
            imagePullPolicy: o.imagePullPolicy ?? KUBERNETES_DEFAULTS.imagePullPolicy,
            command: command(o),
            env: [
              ...Object.entries(job.env).map(([n, value]) => ({ name: n, value })),
              ...passed,
              { name: "KUBEFACE_STORAGE", value: job.storageUrl },
              { name: "KUBEFACE_JOB", value: job.key },
              { name: "KUBEFACE_RUN", value: name },
              { name: "KUBEFACE_SCRATCH", value: `${SCRATCH}/kubeface` },
              {
                name: "KUBEFACE_PERMISSIONS",
                value: JSON.stringify(parsePermissions(job.permissions)),
              },
              {
                name: "KUBEFACE_RUNTIME",
                value:
                  `${runtime.worker.key}@${runtime.worker.sha256},${runtime.thread.key}@${runtime.thread.sha256}`,
              },
              // The stock image's Deno cache is on the read-only root; the worker image's is pre-filled.
              ...(o.workerImage ? [] : [{ name: "DENO_DIR", value: `${SCRATCH}/deno-dir` }]),
              { name: "HOME", value: SCRATCH },
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
  return o.podTemplatePatch ? patchPodTemplate(template, o.podTemplatePatch, CONTAINER) : template;
}
