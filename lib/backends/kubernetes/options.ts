/**
 * Options of the Kubernetes backend, their defaults, and the checks they
 * pass before anything is created.
 *
 * @module
 */

import { checkLabels, checkQuantity, CONTAINER, isDnsLabel } from "./names.ts";
import {
  canParseTemplatePatch,
  parseTemplatePatch,
  patchPodTemplate,
  type PodTemplatePatch,
} from "./template_patch.ts";

/** A toleration, as in a pod spec. */
export interface Toleration {
  /** Taint key; none means every taint (with operator `Exists`). */
  key?: string;
  /**
   * How the value is matched.
   *
   * @default {"Equal" when a value is given, else "Exists"}
   */
  operator?: "Equal" | "Exists";
  /** Taint value, with operator `Equal`. */
  value?: string;
  /** Taint effect tolerated; none means every effect. */
  effect?: "NoSchedule" | "PreferNoSchedule" | "NoExecute";
  /** For `NoExecute`: how long the pod stays bound after the taint appears. */
  tolerationSeconds?: number;
}

/** Options of the Kubernetes backend. */
export interface KubernetesBackendOptions {
  /**
   * Path of the kubeconfig file.
   *
   * @default {$KUBECONFIG, else ~/.kube/config, else the in-cluster service account}
   */
  kubeconfig?: string;
  /**
   * Context of the kubeconfig to use.
   *
   * @default {the kubeconfig's current context}
   */
  context?: string;
  /**
   * Namespace of the Jobs.
   *
   * @default {the context's namespace, else "default"}
   */
  namespace?: string;
  /**
   * Image of the worker pods. The stock Deno image runs a short bootstrap that
   * downloads kubeface's bundled worker from storage; an image built from
   * `lib/image/Dockerfile` (see `workerImage`) runs `/app/worker.ts` directly.
   *
   * @default {`denoland/deno:<the master's Deno version>`}
   */
  image?: string;
  /**
   * The image is a kubeface worker image (built from `lib/image/Dockerfile`,
   * with the worker and its dependencies cached at `/app`).
   *
   * @default {false}
   */
  workerImage?: boolean;
  /**
   * When the kubelet pulls the image.
   *
   * @default {"IfNotPresent"}
   */
  imagePullPolicy?: "Always" | "IfNotPresent" | "Never";
  /**
   * Service account of the pods. Its token is mounted only with
   * `mountServiceAccountToken`.
   *
   * @default {the namespace's default service account}
   */
  serviceAccount?: string;
  /**
   * Mount the service account token into the pods.
   *
   * @default {false}
   */
  mountServiceAccountToken?: boolean;
  /**
   * CPU request per task, e.g. `"500m"` or `"2"`; `null` requests none.
   *
   * @default {"1", or the CPU limit when only that is given}
   */
  cpu?: string | null;
  /**
   * Memory request per task, e.g. `"2Gi"`; `null` requests none (and so
   * sets no memory limit unless `memoryLimit` is given).
   *
   * @default {"1Gi", or the memory limit when only that is given}
   */
  memory?: string | null;
  /**
   * CPU limit per task; none by default.
   *
   * @default {null}
   */
  cpuLimit?: string | null;
  /**
   * Memory limit per task; a task that passes it is OOMKilled. `null` sets
   * none.
   *
   * @default {the memory request}
   */
  memoryLimit?: string | null;
  /** `nvidia.com/gpu` per task. */
  gpus?: number;
  /** Node labels the pods must match. */
  nodeSelector?: Readonly<Record<string, string>>;
  /** Taints the pods tolerate. */
  tolerations?: readonly Toleration[];
  /** Extra labels of the Jobs and pods. */
  labels?: Readonly<Record<string, string>>;
  /** Extra annotations of the Jobs and pods. */
  annotations?: Readonly<Record<string, string>>;
  /**
   * Seconds a task's pod may run before Kubernetes stops it.
   *
   * @default {the job's timeout, if any}
   */
  activeDeadlineSeconds?: number;
  /**
   * Seconds a finished Kubernetes Job is kept before it deletes itself.
   *
   * @default {3600}
   */
  ttlSecondsAfterFinished?: number;
  /**
   * How long a task may wait unschedulable, or for its image, before it
   * fails with the reason instead of hanging, in milliseconds. A pod with no
   * room while another pod of its job runs waits its turn (the parallelism
   * may be wider than the cluster): its wait counts from when none runs.
   *
   * @default {600000}
   */
  unstartableTimeoutMs?: number;
  /**
   * Most completions of one Kubernetes Job; a wider map is split into
   * several Jobs (see split.ts). Internal: tests lower it to split small
   * maps.
   *
   * @internal
   * @default {100000}
   */
  maxCompletionsPerJob?: number;
  /**
   * Size limit of a pod's scratch volume (its `/tmp`, an emptyDir): a task
   * that writes past it is evicted instead of filling the node's disk.
   *
   * @default {"10Gi"}
   */
  scratchSize?: string;
  /**
   * User id the containers run as (not root).
   *
   * @default {1993, the `deno` user of the stock image}
   */
  runAsUser?: number;
  /**
   * Run the pods on GKE spot nodes: the node selector
   * `cloud.google.com/gke-spot: "true"` and the toleration of the spot
   * taint. Spot VMs cost much less and are reclaimed with about 30 s'
   * notice: make tasks checkpoint (`ctx.checkpoint`) and stop when
   * `ctx.signal` fires; such a stop is not counted against `maxRetries`.
   *
   * @default {false}
   */
  spot?: boolean;
  /**
   * A strategic-merge patch applied to the pod template of every Job, for
   * what kubeface has no option for: a priority class, a secret volume
   * mounted into the `worker` container, a sidecar, host networking. Lists
   * merge by their Kubernetes merge keys (containers and volumes by name, a
   * container's `volumeMounts` by mountPath, …), as with `kubectl patch`;
   * `$patch: replace` and `$patch: delete` work too. kubeface's own labels
   * and annotations cannot be patched away. The API server checks the
   * patched Job (server-side dry run) before anything is created. Give the
   * patch as an object, or as its YAML or JSON text (what
   * `--pod-template-patch FILE` holds).
   *
   * @example Host networking and a secret mounted into the worker
   * ```ts ignore
   * const podTemplatePatch = {
   *   spec: {
   *     hostNetwork: true,
   *     volumes: [{ name: "creds", secret: { secretName: "creds" } }],
   *     containers: [{ name: "worker", volumeMounts: [{ name: "creds", mountPath: "/creds" }] }],
   *   },
   * };
   * ```
   */
  podTemplatePatch?: { readonly [key: string]: unknown } | string;
  /**
   * Warm pods: one Indexed Job of `parallelism` pods, each running attempt
   * after attempt in its task thread until the job has none left, instead
   * of a pod per attempt. The master hands out attempts through storage
   * alone (offers taken create-if-absent, claims renewed as heartbeats),
   * and keeps deciding what runs. Past the Job controller's ~10 pods a
   * second, and no pod start per task; but tasks of a job then share a
   * pod, its scratch directory and the task module's state.
   *
   * @default {false}
   */
  warm?: boolean;
  /**
   * Timings of warm pods, in milliseconds: how often a pod renews its
   * claim (a claim not renewed for four of these is a lost pod), how long
   * an idle pod waits for an offer before it exits, and the longest pause
   * between two listings of an idle pod.
   *
   * @default {{ heartbeatMs: 5000, idleMs: 60000, pollMs: 2000 }}
   */
  warmTimings?: { heartbeatMs?: number; idleMs?: number; pollMs?: number };
}

/**
 * The options' pod template patch as an object, its text read and checked.
 *
 * @throws {TypeError} The text is not YAML or JSON of one pod template
 *   fragment, or the patch is malformed.
 */
export function templatePatchOf(o: KubernetesBackendOptions): PodTemplatePatch | undefined {
  return typeof o.podTemplatePatch === "string"
    ? parseTemplatePatch(o.podTemplatePatch, "podTemplatePatch")
    : o.podTemplatePatch;
}

/** Defaults of the options that have fixed ones. */
export const KUBERNETES_DEFAULTS = {
  image: `denoland/deno:${Deno.version.deno}`,
  cpu: "1",
  memory: "1Gi",
  workerImage: false,
  imagePullPolicy: "IfNotPresent",
  mountServiceAccountToken: false,
  ttlSecondsAfterFinished: 3600,
  unstartableTimeoutMs: 600_000,
  runAsUser: 1993,
  scratchSize: "10Gi",
  warm: false,
} as const satisfies Partial<KubernetesBackendOptions>;

/**
 * Check every option, before anything is created.
 *
 * @throws {TypeError} An option is malformed; the message names it and the fix.
 * @throws {RangeError} A number is out of range.
 */
export function checkKubernetesOptions(o: KubernetesBackendOptions): void {
  if (o.namespace !== undefined && !isDnsLabel(o.namespace)) {
    throw new TypeError(
      `Cannot use namespace '${o.namespace}': use 1 to 63 lowercase letters, digits or '-', starting and ending with a letter or digit`,
    );
  }
  if (o.image !== undefined && (o.image.trim() === "" || /\s/.test(o.image))) {
    throw new TypeError(
      `Cannot use image '${o.image}': give an image reference like denoland/deno:2.9.6`,
    );
  }
  if (o.imagePullPolicy && !["Always", "IfNotPresent", "Never"].includes(o.imagePullPolicy)) {
    throw new TypeError(
      `Cannot use image pull policy '${o.imagePullPolicy}': use Always, IfNotPresent or Never`,
    );
  }
  if (
    o.serviceAccount !== undefined && !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(o.serviceAccount)
  ) {
    throw new TypeError(`Cannot use service account '${o.serviceAccount}': it is not a valid name`);
  }
  if (o.cpu) checkQuantity(o.cpu, "CPU request");
  if (o.cpuLimit) checkQuantity(o.cpuLimit, "CPU limit");
  if (o.memory) checkQuantity(o.memory, "memory request");
  if (o.memoryLimit) checkQuantity(o.memoryLimit, "memory limit");
  if (o.scratchSize) checkQuantity(o.scratchSize, "scratch size");
  for (
    const [name, value] of [
      ["gpus", o.gpus],
      ["activeDeadlineSeconds", o.activeDeadlineSeconds],
      ["ttlSecondsAfterFinished", o.ttlSecondsAfterFinished],
      ["unstartableTimeoutMs", o.unstartableTimeoutMs],
      ["runAsUser", o.runAsUser],
      ["warmTimings.heartbeatMs", o.warmTimings?.heartbeatMs],
      ["warmTimings.idleMs", o.warmTimings?.idleMs],
      ["warmTimings.pollMs", o.warmTimings?.pollMs],
    ] as const
  ) {
    if (value !== undefined && (!Number.isInteger(value) || value < 0)) {
      throw new RangeError(`Cannot use ${name} ${value}: it must be a whole number, 0 or more`);
    }
  }
  if (o.runAsUser === 0) {
    throw new RangeError("Cannot use runAsUser 0: worker pods run as a non-root user");
  }
  if (typeof o.podTemplatePatch === "string") {
    // YAML text is read once the backend has loaded its reader (templatePatchOf).
    if (canParseTemplatePatch(o.podTemplatePatch)) templatePatchOf(o);
  } else if (o.podTemplatePatch !== undefined) {
    // Catch a malformed patch now; the API server checks the patched Job before it is created.
    const sample = { metadata: {}, spec: { containers: [{ name: CONTAINER }] } };
    patchPodTemplate(sample, o.podTemplatePatch, CONTAINER);
  }
  checkLabels(o.labels ?? {}, "label");
  checkLabels(o.annotations ?? {}, "annotation");
  checkLabels(o.nodeSelector ?? {}, "node selector");
  for (const t of o.tolerations ?? []) {
    if (t.effect && !["NoSchedule", "PreferNoSchedule", "NoExecute"].includes(t.effect)) {
      throw new TypeError(
        `Cannot use toleration effect '${t.effect}': use NoSchedule, PreferNoSchedule or NoExecute`,
      );
    }
    if (t.operator === "Exists" && t.value) {
      throw new TypeError(`Cannot use toleration '${t.key}': operator Exists takes no value`);
    }
  }
}

/**
 * Parse a toleration written like a taint: `key=value:Effect`,
 * `key:Effect`, `key=value` or `key` (any effect).
 *
 * @throws {TypeError} The text does not have that form.
 */
export function parseToleration(text: string): Toleration {
  const match = /^([^=:\s]+)(?:=([^:\s]*))?(?::(\w+))?$/.exec(text);
  if (!match) {
    throw new TypeError(
      `Cannot use toleration '${text}': write it as key=value:Effect, key:Effect, key=value or key`,
    );
  }
  const [, key, value, effect] = match;
  const toleration: Toleration = value === undefined
    ? { key, operator: "Exists" }
    : { key, operator: "Equal", value };
  if (effect) toleration.effect = effect as Toleration["effect"];
  return toleration;
}
