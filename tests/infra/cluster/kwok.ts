/**
 * A pool of KWOK nodes beside the real node: `kwok` (sigs.k8s.io/kwok, built from the Go module
 * proxy and cached like the other binaries) plays the kubelets of simulated nodes against the
 * test control plane. Only the kubelets are simulated: the apiserver, the controller-manager and
 * the scheduler are the real ones. The nodes carry a NoSchedule taint, so only pods that
 * tolerate it (see {@link kwokPlacement}) land there, and the real node keeps working.
 *
 * `kwok` is started once per cluster and recorded in its state, so `cluster:down` stops it; the
 * node objects live in etcd and go with the cluster.
 *
 * @module
 */

import { allExist, go, install, throwawayModule, timed } from "./go_build.ts";
import {
  KWOK_NODE_ANNOTATION,
  KWOK_NODE_LABEL,
  KWOK_TAINT,
  kwokConfigYaml,
} from "./kwok_config.ts";
import { spawnDetached } from "./processes.ts";
import { readState, writeState } from "./state.ts";
import { cacheRoot, KWOK_VERSION, kwokBinDir } from "./versions.ts";
import { waitUntil } from "./wait.ts";

/** Prefix of the names of KWOK nodes: `kwok-node-0`, `kwok-node-1`, … */
export const KWOK_NODE_PREFIX = "kwok-node-";

/** Options of {@link ensureKwok}. */
export interface EnsureKwokOptions {
  /** Cache root. @default cacheRoot() */
  root?: string;
  /** Receives progress lines. @default () => {} */
  onProgress?: (line: string) => void;
}

/**
 * The path of the pinned `kwok` binary, built with `go install sigs.k8s.io/kwok/cmd/kwok@v0.8.0`
 * (about 3 minutes cold) into {@link kwokBinDir} when missing.
 *
 * @param options Cache root and progress callback.
 * @returns The absolute path of `kwok`.
 * @throws {Error} When `go` fails; the message carries its stderr.
 */
export async function ensureKwok(options: EnsureKwokOptions = {}): Promise<string> {
  const { root = cacheRoot(), onProgress = () => {} } = options;
  const binDir = kwokBinDir(root);
  if (await allExist([`${binDir}/kwok`])) return `${binDir}/kwok`;
  await timed(`kwok ${KWOK_VERSION}`, onProgress, async () => {
    const module = await throwawayModule(root, "kwok");
    try {
      await Deno.mkdir(`${module}/out`);
      await go(module, ["install", "-trimpath", `sigs.k8s.io/kwok/cmd/kwok@${KWOK_VERSION}`], {
        GOBIN: `${module}/out`,
      });
      await install(`${module}/out`, binDir, ["kwok"]);
    } finally {
      await Deno.remove(module, { recursive: true });
    }
  });
  return `${binDir}/kwok`;
}

/** What one KWOK node offers, as a GKE node of the same shape would. */
export interface KwokNodeShape {
  /** Allocatable CPU. @default "15890m" (an e2-standard-16 node on GKE) */
  cpu?: string;
  /** Allocatable memory. @default "57Gi" */
  memory?: string;
  /** Allocatable pods (GKE's default maximum per node). @default 110 */
  pods?: number;
}

/** Options of {@link addKwokNodes}. */
export interface AddKwokNodesOptions extends KwokNodeShape {
  /** The cluster directory (of `cluster:up`). */
  dir: string;
  /** How many nodes the pool should have in all; missing ones are created. */
  nodes: number;
  /** Wait until every node is Ready and schedulable. @default true */
  wait?: boolean;
  /** Receives progress lines. @default () => {} */
  onProgress?: (line: string) => void;
}

/**
 * Grow the KWOK pool of the cluster in `dir` to `nodes` nodes, starting `kwok` first when it
 * does not run yet (it is recorded in the cluster's state, so `cluster:down` stops it).
 *
 * @param options The cluster, the pool's size and the nodes' shape.
 * @returns The names of the pool's nodes.
 * @throws {Error} When `dir` holds no running cluster, kwok cannot start, or a node cannot be made.
 */
export async function addKwokNodes(options: AddKwokNodesOptions): Promise<string[]> {
  const {
    dir,
    nodes,
    cpu = "15890m",
    memory = "57Gi",
    pods = 110,
    wait = true,
    onProgress = () => {},
  } = options;
  if (!Number.isInteger(nodes) || nodes < 0) {
    throw new RangeError(`Cannot make ${nodes} KWOK nodes: give a whole number of 0 or more`);
  }
  const state = await readState(dir);
  if (!state) throw new Error(`Cannot add KWOK nodes: no cluster runs in ${dir}`);
  const api = await adminApi(dir, state.server, state.adminKubeconfig);
  try {
    let kwok = state.processes.find((p) => p.name === "kwok");
    if (!kwok || !(await kwokRuns(kwok.pid))) {
      const binary = await ensureKwok({ onProgress });
      const config = `${dir}/kwok.yaml`;
      await Deno.writeTextFile(
        config,
        kwokConfigYaml({ nodeIP: "100.127.0.1", cidr: "100.64.0.0/12" }),
      );
      onProgress("Starting kwok");
      const pid = await spawnDetached(binary, {
        args: [`--kubeconfig=${state.adminKubeconfig}`, `--config=${config}`, "-v=WARN"],
        logFile: `${dir}/logs/kwok.log`,
        pidFile: `${dir}/pids/kwok.pid`,
      });
      state.processes = state.processes.filter((p) => p.name !== "kwok");
      kwok = { name: "kwok", pid, commandContains: "kwok" };
      state.processes.push(kwok);
      await writeState(dir, state);
    }
    const names = Array.from({ length: nodes }, (_, i) => `${KWOK_NODE_PREFIX}${i}`);
    const existing = new Set(await api.nodeNames());
    const missing = names.filter((name) => !existing.has(name));
    onProgress(`Creating ${missing.length} KWOK nodes (${cpu} CPU, ${memory}, ${pods} pods each)`);
    await inParallel(missing, 16, (name) => api.createNode(kwokNode(name, { cpu, memory, pods })));
    if (wait) {
      // No pid to watch: tests cannot read /proc, where waitUntil looks (kwokRuns asks ps).
      await waitUntil(`${nodes} KWOK nodes Ready and schedulable`, async () => {
        const ready = await api.schedulableNodes(KWOK_NODE_PREFIX);
        return names.every((name) => ready.has(name));
      }, { timeoutMs: 600_000, logFile: `${dir}/logs/kwok.log`, intervalMs: 1000 });
    }
    return names;
  } finally {
    api.close();
  }
}

/**
 * Where pods of the KWOK pool go: the backend options (`nodeSelector`, `tolerations`) that put
 * a job's pods on KWOK nodes and nowhere else.
 *
 * @returns Options to spread into `KubernetesBackendOptions`.
 */
export function kwokPlacement(): {
  nodeSelector: Record<string, string>;
  tolerations: { key: string; operator: "Exists"; effect: "NoSchedule" }[];
} {
  return {
    nodeSelector: { [KWOK_NODE_LABEL]: "kwok" },
    tolerations: [{ key: KWOK_TAINT, operator: "Exists", effect: "NoSchedule" }],
  };
}

/** The Node object of one KWOK node. */
function kwokNode(name: string, shape: Required<KwokNodeShape>): unknown {
  const resources = { cpu: shape.cpu, memory: shape.memory, pods: String(shape.pods) };
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: {
      name,
      annotations: { [KWOK_NODE_ANNOTATION]: "fake", "node.alpha.kubernetes.io/ttl": "0" },
      labels: {
        [KWOK_NODE_LABEL]: "kwok",
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
      },
    },
    spec: { taints: [{ key: KWOK_TAINT, value: "fake", effect: "NoSchedule" }] },
    status: { allocatable: resources, capacity: resources },
  };
}

/** The few admin calls the pool needs, over fetch with the cluster's CA. */
interface AdminApi {
  nodeNames(): Promise<string[]>;
  schedulableNodes(prefix: string): Promise<Set<string>>;
  createNode(body: unknown): Promise<void>;
  deleteNode(name: string): Promise<void>;
  close(): void;
}

/**
 * Admin access to the cluster in `dir` (its CA and the admin token).
 *
 * @param dir The cluster directory.
 * @param server The apiserver URL.
 * @param kubeconfig The admin kubeconfig.
 * @returns The calls the pool needs; `close` releases the HTTP client.
 */
export async function adminApi(dir: string, server: string, kubeconfig: string): Promise<AdminApi> {
  const client = Deno.createHttpClient({ caCerts: [await Deno.readTextFile(`${dir}/pki/ca.crt`)] });
  const token = (await Deno.readTextFile(kubeconfig)).match(/token: (\S+)/)?.[1] ?? "";
  const call = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(`${server}${path}`, {
      client,
      method,
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    if (!response.ok && response.status !== 409 && response.status !== 404) {
      throw new Error(`Cannot ${method} ${path}: ${response.status} ${text}`);
    }
    return text ? JSON.parse(text) : undefined;
  };
  type NodeList = {
    items: {
      metadata: { name: string };
      spec?: { taints?: { key: string }[] };
      status?: { conditions?: { type: string; status: string }[] };
    }[];
  };
  const list = async () => (await call("GET", "/api/v1/nodes")) as NodeList;
  return {
    nodeNames: async () => (await list()).items.map((n) => n.metadata.name),
    schedulableNodes: async (prefix) =>
      new Set(
        (await list()).items.filter((n) =>
          n.metadata.name.startsWith(prefix) &&
          n.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") &&
          !(n.spec?.taints ?? []).some((t) => t.key.startsWith("node.kubernetes.io/"))
        ).map((n) => n.metadata.name),
      ),
    createNode: async (body) => void await call("POST", "/api/v1/nodes", body),
    deleteNode: async (name) => void await call("DELETE", `/api/v1/nodes/${name}`),
    close: () => client.close(),
  };
}

/**
 * Whether `pid` is a running kwok. Asked through `ps`, not /proc: tests run without
 * `--allow-all`, and Deno lets only that read /proc.
 */
async function kwokRuns(pid: number): Promise<boolean> {
  const r = await new Deno.Command("ps", {
    args: ["-o", "stat=,args=", "-p", String(pid)],
    stdout: "piped",
    stderr: "null",
  }).output();
  const line = new TextDecoder().decode(r.stdout).trim();
  return r.success && !line.startsWith("Z") && line.includes("kwok");
}

/** Run `fn` over `items`, at most `limit` at a time. */
async function inParallel<T>(
  items: T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}
