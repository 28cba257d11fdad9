// deno-lint-ignore-file no-console
/**
 * `deno task cluster:up [--dir DIR]`: build what is missing, start etcd, kube-apiserver,
 * kube-controller-manager and kube-scheduler on loopback and a real node (containerd and the
 * kubelet, with the node's images imported), wait until the node is Ready, write
 * `DIR/admin.kubeconfig` and `DIR/user.kubeconfig`, and print `KUBECONFIG=DIR/admin.kubeconfig`
 * as the last line. Everything keeps running after this script exits; `cluster:down` stops it.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { ensureBinaries } from "./build.ts";
import { createPki } from "./certs.ts";
import { down } from "./down.ts";
import {
  apiserverArgs,
  AUDIT_POLICY,
  type ClusterPorts,
  controllerManagerArgs,
  etcdArgs,
  type FlagContext,
  schedulerArgs,
} from "./flags.ts";
import { addKwokNodes } from "./kwok.ts";
import { type Identity, kubeconfigYaml, makeIdentities, tokenAuthFile } from "./kubeconfig.ts";
import { freePorts } from "./ports.ts";
import { nodeState, startNode } from "./node.ts";
import { ensureNodeBinaries } from "./node_build.ts";
import { checkNodeHost } from "./node_host.ts";
import { ensureNodeImages, importImages } from "./node_images.ts";
import { isAlive, spawnDetached } from "./processes.ts";
import { type ClusterState, type ProcessRecord, readState, writeState } from "./state.ts";
import { defaultRunDir, ETCD_VERSION, KUBERNETES_VERSION } from "./versions.ts";
import { waitUntil } from "./wait.ts";

/** Options of {@link up}. */
export interface UpOptions {
  /** State directory (pids, logs, certificates, kubeconfigs, etcd data). @default defaultRunDir() */
  dir?: string;
  /** Port of kube-apiserver. @default a free port */
  apiserverPort?: number;
  /** Name of the node the kubelet registers. @default "kubeface-node-1" */
  nodeName?: string;
  /**
   * More images to import into the node's containerd (from podman's store, by the names pods
   * use; they must be tagged), e.g. the worker image of `deno task image:build`.
   * @default []
   */
  images?: string[];
  /**
   * KWOK nodes to add beside the real node (see kwok.ts): simulated kubelets, tainted so only
   * pods that tolerate them land there. A running cluster's pool is grown to this size.
   * @default 0
   */
  kwokNodes?: number;
  /**
   * kube-controller-manager's `--kube-api-qps` (its burst is twice this). Raise it for width:
   * at the default 20 the Job controller finishes about 10 tasks a second.
   * @default {Kubernetes' default, 20}
   */
  controllerQps?: number;
  /**
   * kube-controller-manager's `--terminated-pod-gc-threshold`: Succeeded and Failed pods kept
   * before the pod garbage collector deletes the oldest (every 20 s; again, each pass, for pods
   * a finalizer still holds).
   * @default {Kubernetes' default, 12500}
   */
  terminatedPodGcThreshold?: number;
  /** Receives progress lines. @default () => {} */
  onProgress?: (line: string) => void;
}

/** A running cluster, as {@link up} returns it. */
export interface RunningCluster extends ClusterState {
  /** The state directory. */
  dir: string;
  /** Whether the cluster was already running (so this call started nothing). */
  reused: boolean;
}

/**
 * Start a cluster in `dir`, or return the one already running there.
 *
 * @param options State directory, apiserver port, node name and progress callback.
 * @returns Paths, ports and pids of the running cluster.
 * @throws {Error} When a build fails or a component does not become ready; whatever was
 *   started is stopped again and the message carries the component's log tail.
 */
export async function up(options: UpOptions = {}): Promise<RunningCluster> {
  const {
    dir = defaultRunDir(),
    apiserverPort,
    nodeName = "kubeface-node-1",
    images = [],
    kwokNodes = 0,
    controllerQps,
    terminatedPodGcThreshold,
    onProgress = () => {},
  } = options;
  if (controllerQps !== undefined && !(Number.isInteger(controllerQps) && controllerQps > 0)) {
    throw new RangeError(
      `Cannot set the controller-manager's API rate to ${controllerQps}: give a whole number of requests per second above 0`,
    );
  }
  if (
    terminatedPodGcThreshold !== undefined &&
    !(Number.isInteger(terminatedPodGcThreshold) && terminatedPodGcThreshold > 0)
  ) {
    throw new RangeError(
      `Cannot keep ${terminatedPodGcThreshold} terminated pods before the pod garbage collector: give a whole number above 0`,
    );
  }
  const existing = await readState(dir);
  if (existing) {
    if (await isHealthy(dir, existing)) {
      onProgress(`A cluster is already running in ${dir}`);
      const missing = images.filter((image) => !existing.images?.includes(image));
      if (missing.length > 0 && existing.node) {
        await importImages(missing, {
          ctr: existing.node.ctr,
          address: existing.node.containerdAddress,
          onProgress,
        });
        existing.images = [...(existing.images ?? []), ...missing];
        await writeState(dir, existing);
      }
      if (kwokNodes > 0) await addKwokNodes({ dir, nodes: kwokNodes, onProgress });
      return { ...existing, dir, reused: true };
    }
    onProgress(`Removing the stale cluster state in ${dir}`);
    await down({ dir });
  }
  const started = performance.now();
  const host = checkNodeHost();
  const binaries = await ensureBinaries({ onProgress });
  const nodeBinaries = await ensureNodeBinaries({ onProgress });
  const nodeImages = await ensureNodeImages({
    pause: nodeBinaries.pause,
    busybox: host.busybox,
    onProgress,
  });
  const startedAfterBuild = performance.now();
  for (const sub of ["", "/logs", "/pids", "/pki", "/kubeconfigs"]) {
    await Deno.mkdir(`${dir}${sub}`, { recursive: true });
  }
  const [etcdClient, etcdPeer, controllerManager, scheduler, kubelet, healthz, free] = freePorts(7);
  const ports: ClusterPorts = {
    etcdClient: etcdClient!,
    etcdPeer: etcdPeer!,
    apiserver: apiserverPort ?? free!,
    controllerManager: controllerManager!,
    scheduler: scheduler!,
    kubelet: kubelet!,
    kubeletHealthz: healthz!,
  };
  const server = `https://127.0.0.1:${ports.apiserver}`;
  const pki = await createPki(`${dir}/pki`, { nodeName, nodeIP: host.nodeIP });
  const caPem = await Deno.readTextFile(pki.caCert);
  const identities = makeIdentities(nodeName);
  const kubeconfigOf = (file: string) =>
    file === "admin" || file === "user"
      ? `${dir}/${file}.kubeconfig`
      : `${dir}/kubeconfigs/${file}.kubeconfig`;
  for (const identity of identities) {
    await Deno.writeTextFile(kubeconfigOf(identity.file), kubeconfigYaml(server, caPem, identity), {
      mode: 0o600,
    });
  }
  await Deno.writeTextFile(`${dir}/audit-policy.yaml`, AUDIT_POLICY);
  const tokenFile = `${dir}/pki/tokens.csv`;
  await Deno.writeTextFile(tokenFile, tokenAuthFile(identities), { mode: 0o600 });
  const context: FlagContext = {
    dir,
    ports,
    pki,
    tokenFile,
    controllerManagerKubeconfig: kubeconfigOf("controller-manager"),
    schedulerKubeconfig: kubeconfigOf("scheduler"),
    ...(controllerQps ? { controllerQps: { qps: controllerQps, burst: 2 * controllerQps } } : {}),
    ...(terminatedPodGcThreshold ? { terminatedPodGcThreshold } : {}),
  };
  const state: ClusterState = {
    version: KUBERNETES_VERSION,
    etcdVersion: ETCD_VERSION,
    server,
    ports,
    nodeName,
    processes: [],
    adminKubeconfig: kubeconfigOf("admin"),
    userKubeconfig: kubeconfigOf("user"),
    kubectl: binaries.kubectl,
  };
  const adminToken = tokenOf(identities, "admin");
  const client = Deno.createHttpClient({ caCerts: [caPem] });
  const start = async (
    name: string,
    program: string,
    args: string[],
    env?: Record<string, string>,
  ): Promise<ProcessRecord> => {
    onProgress(`Starting ${name}`);
    const pid = await spawnDetached(program, {
      args,
      env,
      logFile: `${dir}/logs/${name}.log`,
      pidFile: `${dir}/pids/${name}.pid`,
    });
    const record = { name, pid, commandContains: program.slice(program.lastIndexOf("/") + 1) };
    state.processes.push(record);
    await writeState(dir, state);
    return record;
  };
  const ready = (
    record: ProcessRecord,
    what: string,
    check: () => Promise<boolean>,
    timeoutMs = 120_000,
  ) =>
    waitUntil(`${record.name} (${what})`, check, {
      timeoutMs,
      pid: record.pid,
      logFile: `${dir}/logs/${record.name}.log`,
    });
  try {
    const etcd = await start("etcd", binaries.etcd, etcdArgs(context));
    await ready(etcd, "/health", async () => {
      const response = await fetch(`http://127.0.0.1:${ports.etcdClient}/health`);
      return response.ok && (await response.json()).health === "true";
    });
    const apiserver = await start("kube-apiserver", binaries.kubeApiserver, apiserverArgs(context));
    await ready(apiserver, "/readyz", () => ok(client, `${server}/readyz`, adminToken));
    const kcm = await start(
      "kube-controller-manager",
      binaries.kubeControllerManager,
      controllerManagerArgs(context),
    );
    const kubeScheduler = await start(
      "kube-scheduler",
      binaries.kubeScheduler,
      schedulerArgs(context),
    );
    await ready(
      kcm,
      "/healthz",
      () => ok(client, `https://127.0.0.1:${ports.controllerManager}/healthz`),
    );
    await ready(
      kubeScheduler,
      "/healthz",
      () => ok(client, `https://127.0.0.1:${ports.scheduler}/healthz`),
    );
    await grantLogAccess(client, server, adminToken);
    const allImages = [...nodeImages, ...images];
    state.images = allImages;
    state.node = nodeState(dir, host, nodeBinaries.ctr);
    await writeState(dir, state);
    await startNode({
      dir,
      nodeName,
      host,
      kubeletPort: ports.kubelet,
      kubeletHealthzPort: ports.kubeletHealthz,
      pki,
      kubeconfig: kubeconfigOf("node"),
      kubelet: binaries.kubelet,
      binaries: nodeBinaries,
      images: allImages,
      start,
      ready: (record, what, check) => ready(record, what, check),
      onProgress,
    });
    await writeState(dir, state);
    const kubeletRecord = state.processes.find((p) => p.name === "kubelet")!;
    await ready(
      kubeletRecord,
      `node ${nodeName} Ready and schedulable`,
      () => nodeSchedulable(client, server, adminToken, nodeName),
    );
    if (kwokNodes > 0) await addKwokNodes({ dir, nodes: kwokNodes, onProgress });
    const total = (performance.now() - started) / 1000;
    const warm = (performance.now() - startedAfterBuild) / 1000;
    onProgress(
      `Cluster ${KUBERNETES_VERSION} is up in ${total.toFixed(1)} s (start ${warm.toFixed(1)} s)`,
    );
    return { ...state, dir, reused: false };
  } catch (error) {
    onProgress(`Startup failed; stopping what was started (logs are in ${dir}/logs)`);
    await down({ dir, keepState: true });
    throw error;
  } finally {
    client.close();
  }
}

/**
 * Let the apiserver read logs and exec through the kubelet: its client certificate's user,
 * `kube-apiserver-kubelet-client`, gets `system:kubelet-api-admin`, as kubeadm does.
 */
async function grantLogAccess(
  client: Deno.HttpClient,
  server: string,
  token: string,
): Promise<void> {
  const response = await fetch(`${server}/apis/rbac.authorization.k8s.io/v1/clusterrolebindings`, {
    client,
    method: "POST",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: JSON.stringify({
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRoleBinding",
      metadata: { name: "kubeface:apiserver-kubelet-client" },
      roleRef: {
        apiGroup: "rbac.authorization.k8s.io",
        kind: "ClusterRole",
        name: "system:kubelet-api-admin",
      },
      subjects: [{
        apiGroup: "rbac.authorization.k8s.io",
        kind: "User",
        name: "kube-apiserver-kubelet-client",
      }],
    }),
  });
  const text = await response.text();
  if (!response.ok && response.status !== 409) {
    throw new Error(`Cannot grant the apiserver access to the kubelet: ${response.status} ${text}`);
  }
}

/** Whether every recorded process is alive and the apiserver is ready. */
async function isHealthy(dir: string, state: ClusterState): Promise<boolean> {
  if (!state.processes.every(({ pid }) => isAlive(pid))) return false;
  let client: Deno.HttpClient | undefined;
  try {
    client = Deno.createHttpClient({ caCerts: [await Deno.readTextFile(`${dir}/pki/ca.crt`)] });
    const kubeconfig = await Deno.readTextFile(state.adminKubeconfig);
    const token = kubeconfig.match(/token: (\S+)/)?.[1] ?? "";
    return await ok(client, `${state.server}/readyz`, token);
  } catch {
    return false;
  } finally {
    client?.close();
  }
}

async function ok(client: Deno.HttpClient, url: string, token?: string): Promise<boolean> {
  const headers: Record<string, string> = token ? { Authorization: `Bearer ${token}` } : {};
  const response = await fetch(url, { client, headers });
  await response.body?.cancel();
  return response.ok;
}

/** The node reports Ready=True and the node-lifecycle controller has lifted its not-ready taint. */
async function nodeSchedulable(
  client: Deno.HttpClient,
  server: string,
  token: string,
  nodeName: string,
): Promise<boolean> {
  const response = await fetch(`${server}/api/v1/nodes/${nodeName}`, {
    client,
    headers: { Authorization: `Bearer ${token}` },
  });
  if (!response.ok) {
    await response.body?.cancel();
    return false;
  }
  const node = await response.json() as {
    spec?: { taints?: { key: string }[] };
    status?: { conditions?: { type: string; status: string }[] };
  };
  const ready = node.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True");
  const tainted = (node.spec?.taints ?? []).some((t) => t.key.startsWith("node.kubernetes.io/"));
  return Boolean(ready) && !tainted;
}

function tokenOf(identities: Identity[], file: string): string {
  const identity = identities.find((candidate) => candidate.file === file);
  if (!identity) throw new Error(`Cannot find the identity "${file}"`);
  return identity.token;
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      dir: { type: "string" },
      "apiserver-port": { type: "string" },
      "kwok-nodes": { type: "string" },
      "kube-api-qps": { type: "string" },
      "terminated-pod-gc-threshold": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(
      "Usage: deno task cluster:up [--dir DIR] [--apiserver-port PORT] [--kwok-nodes N] [--kube-api-qps QPS]\n" +
        "                            [--terminated-pod-gc-threshold N]\n\n" +
        "  --kwok-nodes N      add N simulated KWOK nodes (tainted kwok.x-k8s.io/node=fake:NoSchedule)\n" +
        "  --kube-api-qps QPS  kube-controller-manager's --kube-api-qps (burst twice that); default 20\n" +
        "  --terminated-pod-gc-threshold N\n" +
        "                      terminated pods kept before the pod garbage collector deletes the oldest;\n" +
        "                      default 12500",
    );
    Deno.exit(0);
  }
  const port = values["apiserver-port"];
  const count = (flag: "kwok-nodes" | "kube-api-qps" | "terminated-pod-gc-threshold") => {
    const text = values[flag];
    if (text === undefined) return undefined;
    const value = Number(text);
    if (!Number.isInteger(value) || value < 0) {
      console.error(`Cannot use --${flag} ${text}: give a whole number, e.g. --${flag} 100`);
      Deno.exit(2);
    }
    return value;
  };
  const cluster = await up({
    dir: values.dir,
    apiserverPort: port === undefined ? undefined : Number(port),
    kwokNodes: count("kwok-nodes"),
    controllerQps: count("kube-api-qps"),
    terminatedPodGcThreshold: count("terminated-pod-gc-threshold"),
    onProgress: (line) => console.error(line),
  });
  console.log(`KUBECONFIG=${cluster.adminKubeconfig}`);
}
