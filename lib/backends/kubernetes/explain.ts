/**
 * Pod states in plain words, for the user and the status page: why a pod
 * waits (unschedulable, image pull), how it ended (exit code, OOMKilled,
 * deadline, eviction, node lost).
 *
 * @module
 */

import type { V1Pod } from "@kubernetes/client-node";
import { CONTAINER } from "./job_spec.ts";

/** Why a pod cannot start. */
export type Blocker = "unschedulable" | "image" | "config";

/** What a pod's status means. */
export interface PodState {
  /** `pending`, `running`, `succeeded` or `failed`. */
  phase: "pending" | "running" | "succeeded" | "failed";
  /** The worker container's exit code, once it ended. */
  exitCode?: number;
  /** What keeps a pending pod from starting. */
  blocker?: Blocker;
  /** Ran out of memory. */
  oom: boolean;
  /** Stopped for running past its deadline. */
  deadline: boolean;
  /** Evicted, preempted or otherwise disrupted (Kubernetes does not count it). */
  disrupted: boolean;
  /** A sentence for the user. */
  detail: string;
}

/** Read a pod's status. */
export function explainPod(pod: V1Pod): PodState {
  const status = pod.status ?? {};
  const container = status.containerStatuses?.find((c) => c.name === CONTAINER) ??
    status.containerStatuses?.[0];
  const terminated = container?.state?.terminated;
  const waiting = container?.state?.waiting;
  const disruption = status.conditions?.find((c) =>
    c.type === "DisruptionTarget" && c.status === "True"
  );
  const limit = (pod.spec?.containers?.find((c) => c.name === CONTAINER) ??
    pod.spec?.containers?.[0])?.resources?.limits?.memory;
  const base = { oom: false, deadline: false, disrupted: Boolean(disruption) };
  const phase = (status.phase ?? "Pending").toLowerCase();

  if (phase === "succeeded") {
    return { ...base, phase: "succeeded", exitCode: 0, detail: "exited with code 0" };
  }
  if (phase === "failed") {
    const oom = terminated?.reason === "OOMKilled";
    const deadline = status.reason === "DeadlineExceeded";
    let detail: string;
    if (oom) detail = `ran out of memory (OOMKilled${limit ? `, limit ${limit}` : ""})`;
    else if (deadline) {
      detail = `ran past its deadline of ${
        pod.spec?.activeDeadlineSeconds ?? "?"
      } s (DeadlineExceeded)`;
    } else if (status.reason === "Evicted") {
      detail = `evicted: ${status.message ?? "no reason given"}`;
    } else if (disruption) {
      detail = `disrupted (${disruption.reason}): ${disruption.message ?? ""}`.trim();
    } else if (terminated) {
      detail = `exited with code ${terminated.exitCode}${
        terminated.reason ? ` (${terminated.reason})` : ""
      }${terminated.message ? `: ${terminated.message.trim()}` : ""}`;
    } else detail = `failed: ${status.reason ?? ""} ${status.message ?? ""}`.trim();
    return { ...base, phase: "failed", exitCode: terminated?.exitCode, oom, deadline, detail };
  }
  if (phase === "running") {
    return { ...base, phase: "running", detail: `running on ${pod.spec?.nodeName ?? "a node"}` };
  }

  const scheduled = status.conditions?.find((c) => c.type === "PodScheduled");
  if (scheduled?.status === "False" && scheduled.reason === "Unschedulable") {
    return {
      ...base,
      phase: "pending",
      blocker: "unschedulable",
      detail: `unschedulable: ${scheduled.message ?? ""}`.trim(),
    };
  }
  if (waiting?.reason && /ImagePull|ErrImage/.test(waiting.reason)) {
    return {
      ...base,
      phase: "pending",
      blocker: "image",
      detail: `cannot pull image ${container?.image ?? ""} (${waiting.reason}): ${
        waiting.message ?? ""
      }`.trim(),
    };
  }
  if (waiting?.reason && /InvalidImageName|CreateContainer/.test(waiting.reason)) {
    return {
      ...base,
      phase: "pending",
      blocker: "config",
      detail: `cannot start the container (${waiting.reason}): ${waiting.message ?? ""}`.trim(),
    };
  }
  return {
    ...base,
    phase: "pending",
    detail: waiting?.reason ? `waiting: ${waiting.reason}` : "waiting to be scheduled",
  };
}

/** Parse an index set such as `"0-3,7,9-10"` from a Job's status. */
export function parseIndexes(text: string | undefined): Set<number> {
  const out = new Set<number>();
  for (const part of (text ?? "").split(",")) {
    if (!part.trim()) continue;
    const [from, to] = part.split("-").map(Number);
    for (let i = from!; i <= (to ?? from!); i++) out.add(i);
  }
  return out;
}
