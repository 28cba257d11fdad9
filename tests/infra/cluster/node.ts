/**
 * Starting the test node: containerd with the node's images imported, then the kubelet, which
 * registers the Node itself. `cluster:up` waits for the Node to be Ready and schedulable.
 *
 * @module
 */

import { dirname } from "node:path";
import type { Pki } from "./certs.ts";
import { containerdPaths, ctr, runDir, writeContainerdConfig } from "./containerd.ts";
import { kubeletArgs, kubeletConfig, type KubeletContext, kubeletPaths } from "./kubelet.ts";
import type { NodeBinaries } from "./node_build.ts";
import type { NodeHost } from "./node_host.ts";
import { importImages, PAUSE_IMAGE } from "./node_images.ts";
import type { ProcessRecord } from "./state.ts";

/** What `cluster:down` needs to know about the node (kept in state.json). */
export interface NodeState {
  /** containerd's socket. */
  containerdAddress: string;
  /** Path of ctr. */
  ctr: string;
  /** The cluster's directory under /run (sockets, containerd's state, runc's state). */
  runDir: string;
  /** The node's address. */
  nodeIP: string;
}

/**
 * The node's state for the cluster in `dir`, known before anything starts, so a failed start
 * can be cleaned up too.
 *
 * @param dir The cluster directory.
 * @param host What the host provides.
 * @param ctrPath Path of ctr.
 * @returns The state.
 */
export function nodeState(dir: string, host: NodeHost, ctrPath: string): NodeState {
  const run = runDir(dir);
  return {
    containerdAddress: containerdPaths(dir).address,
    ctr: ctrPath,
    runDir: run,
    nodeIP: host.nodeIP,
  };
}

/** What {@link startNode} gets from `cluster:up`. */
export interface StartNodeContext {
  dir: string;
  nodeName: string;
  host: NodeHost;
  kubeletPort: number;
  kubeletHealthzPort: number;
  pki: Pki;
  /** Kubeconfig of the node identity (`system:node:<name>`). */
  kubeconfig: string;
  /** The kubelet binary. */
  kubelet: string;
  binaries: NodeBinaries;
  /** Images to import (pods' names, tagged), the node's own among them. */
  images: string[];
  /** Starts a background process and records it. */
  start: (
    name: string,
    program: string,
    args: string[],
    env?: Record<string, string>,
  ) => Promise<ProcessRecord>;
  /** Waits until `check` holds, failing early when the process died. */
  ready: (record: ProcessRecord, what: string, check: () => Promise<boolean>) => Promise<void>;
  onProgress: (line: string) => void;
}

/**
 * Start containerd, import the images, and start the kubelet.
 *
 * @param context Paths, ports, binaries and the process helpers of `cluster:up`.
 * @throws {Error} When containerd does not answer or an image cannot be imported.
 */
export async function startNode(context: StartNodeContext): Promise<void> {
  const { dir, host, binaries, start, ready } = context;
  const paths = containerdPaths(dir);
  await writeContainerdConfig(paths, {
    sandboxImage: PAUSE_IMAGE,
    runc: host.runc,
    cniBinDir: host.cniBinDir,
  });
  // containerd finds its shim on PATH.
  const path = `${dirname(binaries.shim)}:${
    Deno.env.get("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin"
  }`;
  const containerd = await start("containerd", binaries.containerd, ["--config", paths.config], {
    PATH: path,
  });
  await ready(containerd, "its socket", async () => {
    await ctr(binaries.ctr, paths.address, ["version"]);
    return true;
  });
  await importImages(context.images, {
    ctr: binaries.ctr,
    address: paths.address,
    onProgress: context.onProgress,
  });
  const kubelet: KubeletContext = {
    dir,
    nodeName: context.nodeName,
    nodeIP: host.nodeIP,
    port: context.kubeletPort,
    healthzPort: context.kubeletHealthzPort,
    runtimeEndpoint: `unix://${paths.address}`,
    kubeconfig: context.kubeconfig,
    cert: context.pki.kubeletCert,
    key: context.pki.kubeletKey,
    clientCA: context.pki.caCert,
  };
  const kubeletDirs = kubeletPaths(dir);
  await Deno.mkdir(kubeletDirs.root, { recursive: true });
  await Deno.writeTextFile(kubeletDirs.config, kubeletConfig(kubelet));
  const record = await start("kubelet", context.kubelet, kubeletArgs(kubelet), { PATH: path });
  await ready(record, "/healthz", async () => {
    const response = await fetch(`http://127.0.0.1:${context.kubeletHealthzPort}/healthz`);
    await response.body?.cancel();
    return response.ok;
  });
}
