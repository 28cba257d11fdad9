/**
 * The state directory of a running cluster: `state.json` records ports, pids and paths so
 * `cluster:down` (or a later `cluster:up`) can find what is running.
 *
 * @module
 */

import type { ClusterPorts } from "./flags.ts";
import type { NodeState } from "./node.ts";

/** One background process started by `cluster:up`. */
export interface ProcessRecord {
  /** Component name, e.g. `kube-apiserver`; also the stem of its log and pid files. */
  name: string;
  pid: number;
  /** A string its command line contains, checked before it is signalled (pids get reused). */
  commandContains: string;
}

/** Contents of `<dir>/state.json`. */
export interface ClusterState {
  version: string;
  etcdVersion: string;
  server: string;
  ports: ClusterPorts;
  nodeName: string;
  /** Processes in start order; they are stopped in reverse. */
  processes: ProcessRecord[];
  adminKubeconfig: string;
  userKubeconfig: string;
  kubectl: string;
  /** The node's runtime, once containerd was started. */
  node?: NodeState;
  /** Images imported into the node's containerd, as pods name them. */
  images?: string[];
}

/** Path of the state file of `dir`. */
export function statePath(dir: string): string {
  return `${dir}/state.json`;
}

/**
 * Read the state of `dir`.
 *
 * @param dir The cluster directory.
 * @returns The state, or `undefined` when `dir` holds no cluster.
 */
export async function readState(dir: string): Promise<ClusterState | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(statePath(dir))) as ClusterState;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

/**
 * Write the state of `dir`.
 *
 * @param dir The cluster directory.
 * @param state What is running.
 */
export async function writeState(dir: string, state: ClusterState): Promise<void> {
  await Deno.writeTextFile(statePath(dir), `${JSON.stringify(state, null, 2)}\n`);
}
