// deno-lint-ignore-file no-console
/**
 * The Node object of the agent: registered with realistic capacity, kept Ready by renewing its
 * Lease in `kube-node-lease` every 10 s (as the kubelet does) and by refreshing the Ready
 * condition every minute, so the node-lifecycle controller keeps it schedulable.
 *
 * @module
 */

import {
  type CoordinationV1Api,
  type CoreV1Api,
  PatchStrategy,
  setHeaderOptions,
  type V1Node,
} from "@kubernetes/client-node";
import { apiTime, microTime } from "./pod_status.ts";

/** What the node advertises. */
export interface NodeSpec {
  name: string;
  /** Its InternalIP (pods report it as hostIP and podIP). */
  address: string;
  /** The HTTPS port of the log server (daemonEndpoints.kubeletEndpoint). */
  kubeletPort: number;
  /** Allocatable (and capacity) resources. */
  resources: { cpu: string; memory: string; pods: string; "ephemeral-storage": string };
  /** Reported as nodeInfo.kubeletVersion. */
  kubeletVersion: string;
}

const LEASE_SECONDS = 40;
const LEASE_RENEW_MS = 10_000;
const STATUS_REFRESH_MS = 60_000;

/**
 * Create the Node (or refresh it when it exists) and keep it alive until the signal aborts.
 *
 * @param core The core API client (authenticated as the node).
 * @param coordination The coordination API client.
 * @param spec What the node advertises.
 * @param signal Stops the heartbeats.
 * @returns Once the node is registered; heartbeats continue in the background.
 */
export async function registerNode(
  core: CoreV1Api,
  coordination: CoordinationV1Api,
  spec: NodeSpec,
  signal: AbortSignal,
): Promise<void> {
  const node = nodeObject(spec);
  let uid: string | undefined;
  try {
    uid = (await core.createNode({ body: node })).metadata?.uid;
  } catch (error) {
    if ((error as { code?: number }).code !== 409) throw error;
    uid = (await core.readNode({ name: spec.name })).metadata?.uid;
  }
  await patchStatus(core, spec);
  await ensureLease(coordination, spec.name, uid ?? "");
  const renew = setInterval(() => {
    renewLease(coordination, spec.name).catch((error) => log(`lease renewal failed: ${error}`));
  }, LEASE_RENEW_MS);
  const refresh = setInterval(() => {
    patchStatus(core, spec).catch((error) => log(`node status update failed: ${error}`));
  }, STATUS_REFRESH_MS);
  signal.addEventListener("abort", () => {
    clearInterval(renew);
    clearInterval(refresh);
  });
}

function nodeObject(spec: NodeSpec): V1Node {
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: {
      name: spec.name,
      labels: {
        "kubernetes.io/hostname": spec.name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": "amd64",
      },
    },
    spec: {},
  };
}

/** Capacity, conditions, addresses, endpoint and nodeInfo, as a strategic-merge patch. */
async function patchStatus(core: CoreV1Api, spec: NodeSpec): Promise<void> {
  const now = apiTime(new Date());
  const condition = (type: string, status: string, reason: string, message: string) => ({
    type,
    status,
    reason,
    message,
    lastHeartbeatTime: now,
    lastTransitionTime: now,
  });
  const body = {
    status: {
      capacity: spec.resources,
      allocatable: spec.resources,
      phase: "Running",
      conditions: [
        condition(
          "MemoryPressure",
          "False",
          "KubeletHasSufficientMemory",
          "kubelet has sufficient memory available",
        ),
        condition(
          "DiskPressure",
          "False",
          "KubeletHasNoDiskPressure",
          "kubelet has no disk pressure",
        ),
        condition(
          "PIDPressure",
          "False",
          "KubeletHasSufficientPID",
          "kubelet has sufficient PID available",
        ),
        condition("Ready", "True", "KubeletReady", "kubeface node agent is posting ready status"),
      ],
      addresses: [
        { type: "InternalIP", address: spec.address },
        { type: "Hostname", address: spec.name },
      ],
      daemonEndpoints: { kubeletEndpoint: { Port: spec.kubeletPort } },
      nodeInfo: {
        machineID: spec.name,
        systemUUID: spec.name,
        bootID: spec.name,
        kernelVersion: Deno.osRelease(),
        osImage: "kubeface node agent (pods run as local processes)",
        containerRuntimeVersion: "kubeface-process://0.1.0",
        kubeletVersion: spec.kubeletVersion,
        kubeProxyVersion: "",
        operatingSystem: "linux",
        architecture: "amd64",
      },
    },
  };
  // lastTransitionTime must not move on every heartbeat: keep the times the API already has.
  const current = await core.readNode({ name: spec.name });
  for (const wanted of body.status.conditions) {
    const existing = current.status?.conditions?.find((c) => c.type === wanted.type);
    if (existing?.status === wanted.status && existing.lastTransitionTime) {
      wanted.lastTransitionTime = apiTime(new Date(existing.lastTransitionTime));
    }
  }
  await core.patchNodeStatus(
    { name: spec.name, body },
    setHeaderOptions("Content-Type", PatchStrategy.StrategicMergePatch),
  );
}

async function ensureLease(
  coordination: CoordinationV1Api,
  name: string,
  nodeUid: string,
): Promise<void> {
  try {
    await coordination.createNamespacedLease({
      namespace: "kube-node-lease",
      body: {
        metadata: {
          name,
          ownerReferences: [{ apiVersion: "v1", kind: "Node", name, uid: nodeUid }],
        },
        spec: { holderIdentity: name, leaseDurationSeconds: LEASE_SECONDS },
      },
    });
  } catch (error) {
    if ((error as { code?: number }).code !== 409) throw error;
  }
  await renewLease(coordination, name);
}

async function renewLease(coordination: CoordinationV1Api, name: string): Promise<void> {
  await coordination.patchNamespacedLease(
    {
      name,
      namespace: "kube-node-lease",
      body: {
        spec: {
          holderIdentity: name,
          leaseDurationSeconds: LEASE_SECONDS,
          renewTime: microTime(new Date()),
        },
      },
    },
    setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
  );
}

function log(line: string): void {
  console.error(`${new Date().toISOString()} node: ${line}`);
}
