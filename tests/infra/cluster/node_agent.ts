// deno-lint-ignore-file no-console
/**
 * The test node agent: a stand-in for the kubelet that runs each pod bound to its node as
 * local processes. Started by `cluster:up`; see tests/infra/README.md.
 *
 * ```sh
 * deno run -A tests/infra/cluster/node_agent.ts --kubeconfig node.kubeconfig --node-name n1 \
 *   --port 10250 --cert kubelet.crt --key kubelet.key --state-dir /tmp/n1
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  CoordinationV1Api,
  CoreV1Api,
  KubeConfig,
  ListWatch,
  type V1Pod,
} from "@kubernetes/client-node";
import type { EnvSources } from "./agent/env.ts";
import { serveLogs } from "./agent/log_server.ts";
import { MemoryWatcher } from "./agent/memory_watcher.ts";
import { registerNode } from "./agent/node.ts";
import { PodWorker } from "./agent/pod_worker.ts";
import { ServerTimeoutWatch } from "../../../lib/backends/kubernetes/watch.ts";
import { KUBERNETES_VERSION } from "./versions.ts";

const { values: flags } = parseArgs({
  options: {
    kubeconfig: { type: "string" },
    "node-name": { type: "string", default: "kubeface-node-1" },
    address: { type: "string", default: "127.0.0.1" },
    port: { type: "string" },
    cert: { type: "string" },
    key: { type: "string" },
    "client-ca": { type: "string" },
    "state-dir": { type: "string" },
    cpu: { type: "string", default: "2" },
    memory: { type: "string", default: "8Gi" },
    pods: { type: "string", default: "110" },
    "ephemeral-storage": { type: "string", default: "100Gi" },
  },
});
for (const required of ["kubeconfig", "port", "cert", "key", "state-dir"] as const) {
  if (!flags[required]) {
    console.error(`Missing required flag --${required}`);
    Deno.exit(2);
  }
}
const nodeName = flags["node-name"];
const stateDir = flags["state-dir"]!;
const address = flags.address;

const kubeconfig = new KubeConfig();
kubeconfig.loadFromFile(flags.kubeconfig!);
const core = kubeconfig.makeApiClient(CoreV1Api);
const coordination = kubeconfig.makeApiClient(CoordinationV1Api);
const server = new URL(kubeconfig.getCurrentCluster()?.server ?? "https://127.0.0.1:6443");
const stop = new AbortController();
const log = (line: string) => console.error(`${new Date().toISOString()} agent: ${line}`);

const resources = {
  cpu: flags.cpu,
  memory: flags.memory,
  pods: flags.pods,
  "ephemeral-storage": flags["ephemeral-storage"],
};
const notFound = (error: unknown) => (error as { code?: number }).code === 404;
const envSources: EnvSources = {
  allocatable: resources,
  hostIP: address,
  async configMap(namespace, name) {
    try {
      return (await core.readNamespacedConfigMap({ namespace, name })).data ?? {};
    } catch (error) {
      if (notFound(error)) return undefined;
      throw error;
    }
  },
  async secret(namespace, name) {
    try {
      const data = (await core.readNamespacedSecret({ namespace, name })).data ?? {};
      return Object.fromEntries(Object.entries(data).map(([k, v]) => [k, atob(v)]));
    } catch (error) {
      if (notFound(error)) return undefined;
      throw error;
    }
  },
};

const workers = new Map<string, PodWorker>();
const byName = new Map<string, PodWorker>();
const memory = new MemoryWatcher(200);
const context = {
  core,
  stateDir,
  denoPath: Deno.execPath(),
  envSources,
  memory,
  baseEnv: {
    PATH: Deno.env.get("PATH") ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    KUBERNETES_SERVICE_HOST: server.hostname,
    KUBERNETES_SERVICE_PORT: server.port || "443",
    KUBERNETES_SERVICE_PORT_HTTPS: server.port || "443",
  },
};

function sync(pod: V1Pod): void {
  const uid = pod.metadata?.uid;
  if (!uid) return;
  const existing = workers.get(uid);
  if (existing) {
    existing.observe(pod);
    return;
  }
  log(`pod ${pod.metadata?.namespace}/${pod.metadata?.name} bound to this node`);
  const worker = new PodWorker(pod, context);
  workers.set(uid, worker);
  byName.set(`${worker.namespace}/${worker.name}`, worker);
}

function forget(pod: V1Pod): void {
  const uid = pod.metadata?.uid ?? "";
  const worker = workers.get(uid);
  if (!worker) return;
  log(`pod ${worker.namespace}/${worker.name} removed`);
  workers.delete(uid);
  if (byName.get(`${worker.namespace}/${worker.name}`) === worker) {
    byName.delete(`${worker.namespace}/${worker.name}`);
  }
  void worker.remove();
}

await Deno.mkdir(`${stateDir}/pods`, { recursive: true });
serveLogs({
  hostname: address,
  port: Number(flags.port),
  cert: await Deno.readTextFile(flags.cert!),
  key: await Deno.readTextFile(flags.key!),
  lookup: (namespace, pod, container) => byName.get(`${namespace}/${pod}`)?.logs(container),
  signal: stop.signal,
});
await registerNode(core, coordination, {
  name: nodeName,
  address,
  kubeletPort: Number(flags.port),
  resources,
  kubeletVersion: KUBERNETES_VERSION,
}, stop.signal);
log(`node ${nodeName} registered`);

const fieldSelector = `spec.nodeName=${nodeName}`;
const informer = new ListWatch<V1Pod>(
  "/api/v1/pods",
  new ServerTimeoutWatch(kubeconfig),
  () => core.listPodForAllNamespaces({ fieldSelector }),
  false,
  undefined,
  fieldSelector,
);
informer.on("add", sync);
informer.on("update", sync);
informer.on("delete", forget);
informer.on("error", (error) => {
  if (stop.signal.aborted) return;
  log(`pod watch failed, restarting in 1 s: ${error}`);
  setTimeout(() => void informer.start(), 1000);
});
await informer.start();
log(`watching pods with ${fieldSelector}`);

async function shutdown(signal: string): Promise<void> {
  log(`${signal}: stopping ${workers.size} pod(s)`);
  stop.abort();
  await informer.stop();
  memory.stop();
  await Promise.all([...workers.values()].map((worker) => worker.kill()));
  Deno.exit(0);
}
Deno.addSignalListener("SIGTERM", () => void shutdown("SIGTERM"));
Deno.addSignalListener("SIGINT", () => void shutdown("SIGINT"));
