/**
 * The status objects the node agent writes: container states as the kubelet reports them and
 * the pod conditions it owns. Every state object names all three keys, with `null` for the
 * absent ones, because a strategic merge patch would otherwise keep a stale `running` beside a
 * new `terminated`.
 *
 * @module
 */

import type { V1Container } from "@kubernetes/client-node";

/** A container state the agent tracks. */
export type ContainerState =
  | { kind: "waiting"; reason: string; message?: string }
  | { kind: "running"; startedAt: Date }
  | {
    kind: "terminated";
    exitCode: number;
    reason: string;
    message?: string;
    signal?: number;
    startedAt?: Date;
    finishedAt: Date;
    containerID?: string;
  };

/** A container's terminated state. */
export type TerminatedState = Extract<ContainerState, { kind: "terminated" }>;

/**
 * Format a time as the API does (RFC 3339, whole seconds).
 *
 * @param date The time.
 * @returns E.g. `2026-11-28T12:00:00Z`.
 */
export function apiTime(date: Date): string {
  return date.toISOString().replace(/\.\d+Z$/, "Z");
}

/**
 * Format a time as a `MicroTime` (RFC 3339 with six fraction digits), e.g. a Lease renewTime.
 *
 * @param date The time.
 * @returns E.g. `2026-11-28T12:00:00.123000Z`.
 */
export function microTime(date: Date): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

/**
 * The `state`/`lastState` object of a container status.
 *
 * @param state The state, or `undefined` for an empty object.
 * @returns An object with `waiting`, `running` and `terminated` keys.
 */
export function stateObject(state: ContainerState | undefined): Record<string, unknown> {
  if (!state) return {};
  return {
    waiting: state.kind === "waiting"
      ? { reason: state.reason, message: state.message ?? null }
      : null,
    running: state.kind === "running" ? { startedAt: apiTime(state.startedAt) } : null,
    terminated: state.kind === "terminated"
      ? {
        exitCode: state.exitCode,
        signal: state.signal ?? null,
        reason: state.reason,
        message: state.message ?? null,
        startedAt: state.startedAt ? apiTime(state.startedAt) : null,
        finishedAt: apiTime(state.finishedAt),
        containerID: state.containerID ?? null,
      }
      : null,
  };
}

/**
 * The terminated reason a runtime gives an exit.
 *
 * @param exitCode The exit code.
 * @param oomKilled Whether the agent killed it for exceeding its memory limit.
 * @returns `OOMKilled`, `Completed` or `Error`.
 */
export function terminatedReason(exitCode: number, oomKilled: boolean): string {
  if (oomKilled) return "OOMKilled";
  return exitCode === 0 ? "Completed" : "Error";
}

/** Tracks `lastTransitionTime` of the pod conditions the agent owns. */
export class Conditions {
  #current = new Map<string, { status: string; since: Date }>();

  /**
   * Build the conditions for a patch.
   *
   * @param wanted Condition type → [status, reason].
   * @returns Condition objects; the transition time moves only when the status changes.
   */
  render(wanted: Record<string, [boolean, string | undefined]>): Record<string, unknown>[] {
    return Object.entries(wanted).map(([type, [value, reason]]) => {
      const status = value ? "True" : "False";
      const previous = this.#current.get(type);
      const since = previous && previous.status === status ? previous.since : new Date();
      this.#current.set(type, { status, since });
      return {
        type,
        status,
        reason: reason ?? null,
        message: null,
        lastProbeTime: null,
        lastTransitionTime: apiTime(since),
      };
    });
  }
}

/** What {@link podStatusPatch} needs to know about one container. */
export interface ContainerView {
  spec: V1Container;
  restartCount: number;
  state: ContainerState;
  lastState?: TerminatedState;
}

/** What {@link podStatusPatch} needs to know about the pod. */
export interface PodView {
  uid: string;
  phase: string;
  reason?: string;
  message?: string;
  startTime?: Date;
  hostIP: string;
  init: ContainerView[];
  main: ContainerView[];
}

/**
 * The strategic-merge patch body of a pod status, as the kubelet would report it.
 *
 * @param pod The pod's tracked state.
 * @param conditions The transition-time tracker of this pod.
 * @returns `{ status: … }`.
 */
export function podStatusPatch(pod: PodView, conditions: Conditions): Record<string, unknown> {
  const { uid, phase, hostIP, init, main } = pod;
  const terminal = phase === "Succeeded" || phase === "Failed";
  const initialized = init.every((c) => c.state.kind === "terminated" && c.state.exitCode === 0);
  const ready = !terminal && main.every((c) => c.state.kind === "running");
  const notReady = terminal ? "PodCompleted" : "ContainersNotReady";
  const status = (c: ContainerView) => ({
    name: c.spec.name,
    image: c.spec.image ?? "",
    imageID: "",
    containerID: c.state.kind === "waiting"
      ? null
      : `kubeface://${uid}/${c.spec.name}/${c.restartCount}`,
    ready: c.state.kind === "running",
    started: c.state.kind === "running",
    restartCount: c.restartCount,
    state: stateObject(c.state),
    lastState: stateObject(c.lastState),
  });
  return {
    status: {
      phase,
      reason: pod.reason ?? null,
      message: pod.message ?? null,
      hostIP,
      hostIPs: [{ ip: hostIP }],
      podIP: hostIP,
      podIPs: [{ ip: hostIP }],
      startTime: pod.startTime ? apiTime(pod.startTime) : null,
      conditions: conditions.render({
        PodReadyToStartContainers: [!terminal, undefined],
        Initialized: [initialized, initialized ? undefined : "ContainersNotInitialized"],
        ContainersReady: [ready, ready ? undefined : notReady],
        Ready: [ready, ready ? undefined : notReady],
      }),
      ...(init.length > 0 ? { initContainerStatuses: init.map(status) } : {}),
      containerStatuses: main.map(status),
    },
  };
}
