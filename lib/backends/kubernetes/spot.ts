/**
 * Pods that can be stopped and resumed: on GKE spot nodes (`spot`), and
 * with the job's grace period as their `terminationGracePeriodSeconds`.
 *
 * GKE reclaims a spot VM with about 30 seconds' notice. The kubelet's
 * graceful node shutdown then sends SIGTERM to the pods, and by default
 * gives ordinary pods the first 15 of those seconds (the rest goes to
 * system pods; newer GKE versions can lengthen it to 120 s per node pool),
 * whatever their own grace period says. The worker turns SIGTERM into the
 * task's `ctx.signal`: a task that checkpoints as soon as it fires loses
 * nothing; one that cannot finish in time loses at most one checkpoint
 * interval. Such a pod gets the `DisruptionTarget` condition, which the
 * Job's pod failure policy does not count against `--max-retries`: kubeface
 * runs the task again at once in a new Job (see job_spec.ts).
 *
 * @module
 */

import { DEFAULTS } from "../../options.ts";
import { type JobContext, WORKER_EXIT_MS } from "../backend.ts";
import type { KubernetesBackendOptions, Toleration } from "./options.ts";

/** The node label (and taint) of GKE spot nodes. */
export const SPOT_LABEL = "cloud.google.com/gke-spot";

/** The toleration of GKE's spot taint. */
export const SPOT_TOLERATION: Toleration = {
  key: SPOT_LABEL,
  operator: "Equal",
  value: "true",
  effect: "NoSchedule",
};

/**
 * The options with what `spot` asks for: the spot node selector and the
 * toleration of the spot taint (which Autopilot adds itself, and Standard
 * spot node pools may carry).
 */
export function withSpot(options: KubernetesBackendOptions): KubernetesBackendOptions {
  if (!options.spot) return options;
  const tolerations = options.tolerations ?? [];
  const tolerated = tolerations.some((t) => t.key === SPOT_LABEL);
  return {
    ...options,
    nodeSelector: { ...options.nodeSelector, [SPOT_LABEL]: "true" },
    tolerations: tolerated ? tolerations : [...tolerations, SPOT_TOLERATION],
  };
}

/**
 * A pod's `terminationGracePeriodSeconds`: the job's grace period for the
 * task, plus {@linkcode WORKER_EXIT_MS} for the worker to store what the task
 * left and exit (30 s with the default 25 s grace, Kubernetes' own default).
 */
export function terminationGraceSeconds(job: Pick<JobContext, "graceMs">): number {
  return Math.ceil(((job.graceMs ?? DEFAULTS.graceMs) + WORKER_EXIT_MS) / 1000);
}
