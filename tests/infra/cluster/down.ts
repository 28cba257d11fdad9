// deno-lint-ignore-file no-console
/**
 * `deno task cluster:down [--dir DIR]`: stop everything `cluster:up` started in DIR (the node
 * agent and its pod processes first, etcd last) and remove DIR.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { commandLine, isAlive, signalGroup, stopGroup } from "./processes.ts";
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
  for (const { name, pid, commandContains } of [...state.processes].reverse()) {
    if (!isAlive(pid) || !commandLine(pid)?.includes(commandContains)) continue;
    onProgress(`Stopping ${name} (pid ${pid})`);
    await stopGroup(pid, name === "node-agent" ? 40_000 : 10_000);
  }
  await stopLeftoverPods(`${dir}/node/pods`);
  if (!keepState) await Deno.remove(dir, { recursive: true });
  return true;
}

/** Kill pod process groups the node agent recorded and did not stop (e.g. it was killed). */
async function stopLeftoverPods(podsDir: string): Promise<void> {
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(podsDir));
  } catch {
    return;
  }
  for (const entry of entries) {
    for await (const file of Deno.readDir(`${podsDir}/${entry.name}`)) {
      if (!file.name.endsWith(".pid")) continue;
      const pid = Number(await Deno.readTextFile(`${podsDir}/${entry.name}/${file.name}`));
      // Container processes lead their own session; a reused pid almost never does.
      if (Number.isInteger(pid) && pid > 1 && isAlive(pid) && sessionOf(pid) === pid) {
        signalGroup(pid, "SIGKILL");
      }
    }
  }
}

function sessionOf(pid: number): number | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[3]);
  } catch {
    return undefined;
  }
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
