/**
 * Pod and Job helpers for tests against the test cluster: pod specs for its node (the stock
 * Deno image and a busybox image, both imported by `cluster:up`; host networking, as no pod may
 * have an address of its own here) and polling for states, with deadlines.
 *
 * @module
 */

import {
  BatchV1Api,
  CoreV1Api,
  type V1Container,
  type V1Job,
  type V1ObjectMeta,
  type V1Pod,
  type V1PodSpec,
} from "@kubernetes/client-node";
import { pollUntil, type TestCluster } from "./cluster.ts";
import { BUSYBOX_IMAGE, DENO_IMAGE } from "./node_images.ts";

/** The label (and env source) of an Indexed Job pod's completion index. */
export const INDEX_LABEL = "batch.kubernetes.io/job-completion-index";

/**
 * A pod spec with one container `main` that never restarts, mounts no service-account token,
 * uses the host's network and gets 5 s to stop.
 *
 * @param container Fields of the container (the image defaults to the stock Deno image).
 * @param extra Further pod spec fields.
 * @returns The pod spec.
 */
export function podSpec(
  container: Partial<V1Container>,
  extra: Partial<V1PodSpec> = {},
): V1PodSpec {
  return {
    restartPolicy: "Never",
    automountServiceAccountToken: false,
    terminationGracePeriodSeconds: 5,
    hostNetwork: true,
    containers: [{ name: "main", image: DENO_IMAGE, ...container }],
    ...extra,
  };
}

/**
 * A container running `deno eval CODE`.
 *
 * @param code Module code (top-level await works).
 * @returns Container fields for {@link podSpec}.
 */
export function denoEval(code: string): Partial<V1Container> {
  return { command: ["deno", "eval", code] };
}

/**
 * A container running `sh -c SCRIPT`. Kubernetes expands `$(VAR)` and turns `$$` into `$`
 * before the shell sees the script.
 *
 * @param script The shell script.
 * @returns Container fields for {@link podSpec}.
 */
export function shell(script: string): Partial<V1Container> {
  return { image: BUSYBOX_IMAGE, command: ["sh", "-c", script] };
}

/** Names one object. */
export interface ObjectRef {
  namespace: string;
  name: string;
}

/**
 * Create a pod.
 *
 * @param cluster The cluster.
 * @param options Where, the spec and optional metadata (labels, finalizers, …).
 * @returns The created pod.
 */
export async function createPod(
  cluster: TestCluster,
  options: ObjectRef & { spec: V1PodSpec; metadata?: V1ObjectMeta },
): Promise<V1Pod> {
  const { namespace, name, spec, metadata = {} } = options;
  const core = cluster.kubeConfig.makeApiClient(CoreV1Api);
  return await core.createNamespacedPod({
    namespace,
    body: { metadata: { ...metadata, name }, spec },
  });
}

/** Options of {@link waitForPod}. */
export interface WaitForPodOptions extends ObjectRef {
  /** What is awaited, for the timeout message, e.g. "to finish". */
  what: string;
  /** Returns `true` once the pod is as awaited. */
  accept: (pod: V1Pod) => boolean;
  /** @default 60_000 */
  timeoutMs?: number;
}

/**
 * Poll a pod until `accept` holds.
 *
 * @param cluster The cluster.
 * @param options The pod, the predicate and a timeout.
 * @returns The pod as last read.
 * @throws {Error} On timeout.
 */
export function waitForPod(cluster: TestCluster, options: WaitForPodOptions): Promise<V1Pod> {
  const { namespace, name, what, accept, timeoutMs = 60_000 } = options;
  const core = cluster.kubeConfig.makeApiClient(CoreV1Api);
  return pollUntil(`pod ${namespace}/${name} ${what}`, async () => {
    const pod = await core.readNamespacedPod({ name, namespace });
    return accept(pod) ? pod : undefined;
  }, { timeoutMs });
}

/**
 * Poll until a pod no longer exists.
 *
 * @param cluster The cluster.
 * @param pod The pod.
 * @throws {Error} After 60 s.
 */
export async function waitForPodGone(cluster: TestCluster, pod: ObjectRef): Promise<void> {
  const core = cluster.kubeConfig.makeApiClient(CoreV1Api);
  await pollUntil(`pod ${pod.namespace}/${pod.name} to be gone`, async () => {
    try {
      await core.readNamespacedPod(pod);
      return undefined;
    } catch (error) {
      return statusCode(error) === 404 ? true : undefined;
    }
  });
}

/**
 * Whether a pod has finished.
 *
 * @param pod The pod.
 * @returns `true` in phase Succeeded or Failed.
 */
export function isTerminal(pod: V1Pod): boolean {
  return pod.status?.phase === "Succeeded" || pod.status?.phase === "Failed";
}

/** Options of {@link waitForJob}. */
export interface WaitForJobOptions extends ObjectRef {
  /** Condition types, one of which must become True, e.g. `["Complete", "Failed"]`. */
  conditions: string[];
  /** @default 120_000 */
  timeoutMs?: number;
}

/**
 * Poll a Job until one of the given conditions is True.
 *
 * @param cluster The cluster.
 * @param options The Job, the conditions and a timeout.
 * @returns The Job as last read.
 * @throws {Error} On timeout.
 */
export function waitForJob(cluster: TestCluster, options: WaitForJobOptions): Promise<V1Job> {
  const { namespace, name, conditions, timeoutMs = 120_000 } = options;
  const batch = cluster.kubeConfig.makeApiClient(BatchV1Api);
  return pollUntil(`job ${namespace}/${name} to be ${conditions.join(" or ")}`, async () => {
    const job = await batch.readNamespacedJob({ name, namespace });
    const done = job.status?.conditions?.some((c) =>
      conditions.includes(c.type) && c.status === "True"
    );
    return done ? job : undefined;
  }, { timeoutMs, intervalMs: 500 });
}

/**
 * The HTTP status of a failed client-node call.
 *
 * @param error What the call threw.
 * @returns The status code, if the error carries one.
 */
export function statusCode(error: unknown): number | undefined {
  return (error as { code?: number }).code;
}
