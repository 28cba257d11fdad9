// deno-lint-ignore-file no-console
/**
 * `deno task cluster:down [--dir DIR]`: stop everything `cluster:up` started in DIR (the kubelet
 * first, then every container through containerd, containerd, the control plane, etcd last),
 * remove what the node left (cgroups, mounts, shims, log links; see node_down.ts) and DIR.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { cleanupNode, containerIds, removeContainers } from "./node_down.ts";
import { commandLine, isAlive, stopGroup } from "./processes.ts";
import { readState } from "./state.ts";
import { defaultRunDir } from "./versions.ts";

/** Options of {@link down}. */
export interface DownOptions {
  /** State directory given to `up`. @default defaultRunDir() */
  dir?: string;
  /** Keep DIR (logs, certificates) after stopping the processes. @default false */
  keepState?: boolean;
  /** Receives progress lines. @default () => {} */
  onProgress?: (line: string) => void;
}

/**
 * Stop the cluster in `dir` and remove its state.
 *
 * @param options The state directory, whether to keep it, and a progress callback.
 * @returns `true` when a cluster was found in `dir`.
 */
export async function down(options: DownOptions = {}): Promise<boolean> {
  const { dir = defaultRunDir(), keepState = false, onProgress = () => {} } = options;
  const state = await readState(dir);
  if (!state) {
    onProgress(`No cluster state in ${dir}; nothing to stop`);
    return false;
  }
  const ids = state.node ? await containerIds(state.node) : [];
  for (const { name, pid, commandContains } of [...state.processes].reverse()) {
    // The kubelet leaves its containers running when it stops; containerd removes them.
    if (name === "containerd" && state.node) await removeContainers(state.node, onProgress);
    if (!isAlive(pid) || !commandLine(pid)?.includes(commandContains)) continue;
    onProgress(`Stopping ${name} (pid ${pid})`);
    await stopGroup(pid, 10_000);
  }
  if (state.node) await cleanupNode(dir, state.node, ids);
  if (!keepState) await Deno.remove(dir, { recursive: true });
  return true;
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: { dir: { type: "string" }, help: { type: "boolean", short: "h" } },
  });
  if (values.help) {
    console.log("Usage: deno task cluster:down [--dir DIR]");
    Deno.exit(0);
  }
  const dir = values.dir ?? defaultRunDir();
  const found = await down({ dir, onProgress: (line) => console.error(line) });
  console.log(found ? `Stopped the cluster in ${dir}` : `No cluster in ${dir}`);
}
