/**
 * Stopping the test node without leaving anything behind: the containers are removed through
 * containerd while it still runs (so the shims exit and unmount the root file systems); after
 * containerd and the kubelet stopped, whatever is left is found by where it lives — processes
 * in the cluster's containers' cgroups (in every hierarchy), shims serving the cluster's socket, mounts
 * under the cluster's directories, the kubelet's symlinks in /var/log/containers, and its
 * device-plugin socket (a fixed path, /var/lib/kubelet/device-plugins/kubelet.sock) unless
 * another kubelet still runs.
 *
 * @module
 */

import { ctr } from "./containerd.ts";
import type { NodeState } from "./node.ts";
import { commandLine, delay, isAlive } from "./processes.ts";
import { runCommand } from "./run_command.ts";

/**
 * The ids of the node's containers and sandboxes: those containerd lists, and those whose
 * bundle is in its state directory (which outlives containerd). Read before anything stops.
 *
 * @param node The node's state.
 * @returns Container ids.
 */
export async function containerIds(node: NodeState): Promise<string[]> {
  const listed = (await ctr(node.ctr, node.containerdAddress, ["containers", "ls", "--quiet"])
    .catch(() => "")).split("\n").map((line) => line.trim()).filter(Boolean);
  let bundles: string[] = [];
  try {
    const dir = `${node.runDir}/containerd/io.containerd.runtime.v2.task/k8s.io`;
    bundles = [...Deno.readDirSync(dir)].map((entry) => entry.name);
  } catch { /* none */ }
  return [...new Set([...listed, ...bundles])];
}

/**
 * Kill and remove every container and sandbox of the node, while containerd runs.
 *
 * @param node The node's state.
 * @param onProgress Receives a line when there is something to remove.
 */
export async function removeContainers(
  node: NodeState,
  onProgress: (line: string) => void,
): Promise<void> {
  const list = async (what: string) =>
    (await ctr(node.ctr, node.containerdAddress, [what, "ls", "--quiet"]).catch(() => ""))
      .split("\n").map((line) => line.trim()).filter(Boolean);
  const containers = await list("containers");
  if (containers.length === 0) return;
  onProgress(`Removing ${containers.length} container(s) and sandbox(es)`);
  const tasks = await list("tasks");
  if (tasks.length > 0) {
    await ctr(node.ctr, node.containerdAddress, ["tasks", "delete", "--force", ...tasks])
      .catch(() => {});
  }
  await ctr(node.ctr, node.containerdAddress, ["containers", "delete", ...containers])
    .catch(() => {});
}

/**
 * Remove what the node left once its processes are gone.
 *
 * @param dir The cluster directory.
 * @param node The node's state.
 * @param ids The ids of its containers ({@link containerIds}, read before it stopped).
 */
export async function cleanupNode(dir: string, node: NodeState, ids: string[]): Promise<void> {
  for (const pid of pids()) {
    const command = commandLine(pid) ?? "";
    if (command.includes("containerd-shim") && command.includes(node.containerdAddress)) {
      killQuietly(pid);
    }
  }
  await removeCgroups(ids.map((id) => `${CGROUP_PARENT}/${id}`));
  for (const hierarchy of hierarchies()) {
    await Deno.remove(`${hierarchy}${CGROUP_PARENT}`).catch(() => {}); // only once empty
  }
  await unmountUnder([dir, node.runDir]);
  await removeLogLinks(dir);
  await Deno.remove(node.runDir, { recursive: true }).catch(() => {});
  if (!pids().some((pid) => /(^|\/)kubelet$/.test((commandLine(pid) ?? "").split(" ")[0]!))) {
    // Only what the kubelet made there, and each directory only if it is empty now.
    for (const path of [`${DEVICE_PLUGINS}/kubelet.sock`, DEVICE_PLUGINS, "/var/lib/kubelet"]) {
      await Deno.remove(path).catch(() => {});
    }
  }
}

/** Where every kubelet puts its device-plugin socket, whatever its root directory. */
const DEVICE_PLUGINS = "/var/lib/kubelet/device-plugins";

/** containerd's cgroup parent of CRI containers whose pod names none. */
const CGROUP_PARENT = "/k8s.io";

/** Kill every process in the cgroup trees in each hierarchy, then remove the trees. */
async function removeCgroups(roots: string[]): Promise<void> {
  const trees = hierarchies().flatMap((h) => roots.map((root) => `${h}${root}`)).filter(exists);
  for (let attempt = 0; attempt < 100; attempt++) {
    let alive = 0;
    for (const tree of trees) {
      for (const group of walk(tree)) {
        for (const pid of readPids(`${group}/cgroup.procs`)) {
          alive++;
          killQuietly(pid);
        }
      }
    }
    if (alive === 0) break;
    await delay(50);
  }
  for (const tree of trees) {
    for (const group of walk(tree).reverse()) {
      for (let attempt = 0; attempt < 50; attempt++) {
        try {
          Deno.removeSync(group);
          break;
        } catch (error) {
          if (error instanceof Deno.errors.NotFound) break;
          await delay(50); // a process is still exiting
        }
      }
    }
  }
}

/** Mount points of the cgroup hierarchies: every v1 controller, and the v2 tree. */
function hierarchies(): string[] {
  return mounts().filter((m) => m.type === "cgroup" || m.type === "cgroup2").map((m) => m.point);
}

/** Unmount every mount point under the given directories, the deepest first. */
async function unmountUnder(dirs: string[]): Promise<void> {
  for (let round = 0; round < 5; round++) {
    const points = mounts().map((m) => m.point)
      .filter((point) => dirs.some((dir) => point === dir || point.startsWith(`${dir}/`)))
      .sort((a, b) => b.length - a.length);
    if (points.length === 0) return;
    for (const point of points) {
      await runCommand("umount", { args: [point] })
        .catch(() => runCommand("umount", { args: ["--lazy", point] }))
        .catch(() => {});
    }
  }
}

/** Remove the kubelet's symlinks in /var/log/containers that point into `dir`. */
async function removeLogLinks(dir: string): Promise<void> {
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync("/var/log/containers")];
  } catch {
    return;
  }
  for (const entry of entries) {
    const path = `/var/log/containers/${entry.name}`;
    const target = await Deno.readLink(path).catch(() => "");
    if (target.startsWith(`${dir}/`)) await Deno.remove(path).catch(() => {});
  }
}

/** Mount points and file system types of this mount namespace. */
function mounts(): { point: string; type: string }[] {
  return Deno.readTextFileSync("/proc/self/mountinfo").split("\n").filter(Boolean).map((line) => {
    const fields = line.split(" ");
    const separator = fields.indexOf("-");
    const unescape = (text: string) =>
      text.replace(/\\(\d{3})/g, (_, octal) => String.fromCharCode(parseInt(octal, 8)));
    return { point: unescape(fields[4] ?? ""), type: fields[separator + 1] ?? "" };
  });
}

function walk(dir: string): string[] {
  const out = [dir];
  try {
    for (const entry of Deno.readDirSync(dir)) {
      if (entry.isDirectory) out.push(...walk(`${dir}/${entry.name}`));
    }
  } catch { /* removed meanwhile */ }
  return out;
}

function readPids(file: string): number[] {
  try {
    return Deno.readTextFileSync(file).split("\n").filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function pids(): number[] {
  return [...Deno.readDirSync("/proc")].filter((e) => /^\d+$/.test(e.name)).map((e) =>
    Number(e.name)
  );
}

function killQuietly(pid: number): void {
  if (!isAlive(pid)) return;
  try {
    Deno.kill(pid, "SIGKILL");
  } catch { /* gone */ }
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}
