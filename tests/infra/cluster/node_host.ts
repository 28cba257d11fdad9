/**
 * Whether this machine can run the test node (containerd, runc and the kubelet), checked before
 * anything is built or started, so the test command can say why not in one line.
 *
 * @module
 */

import { nodeAddress } from "./kubelet.ts";

/** Where Debian's containernetworking-plugins puts the CNI plugins, and where others do. */
const CNI_DIRS = ["/usr/lib/cni", "/opt/cni/bin"];

/** What the node needs from this machine, as found. */
export interface NodeHost {
  /** Absolute path of runc. */
  runc: string;
  /** Directory holding the `loopback` CNI plugin. */
  cniBinDir: string;
  /** The static busybox for the shell image. */
  busybox: string;
  /** The node's address (see `nodeAddress()` in kubelet.ts). */
  nodeIP: string;
}

/**
 * Check this machine for what the node needs.
 *
 * @returns What was found.
 * @throws {Error} When something is missing; the message names it and how to get it.
 */
export function checkNodeHost(): NodeHost {
  const problems: string[] = [];
  if (Deno.build.os !== "linux") problems.push(`it runs on Linux only, not ${Deno.build.os}`);
  if (Deno.uid() !== 0) {
    problems.push("containerd and the kubelet need root; run it as root (e.g. with sudo)");
  }
  if (!exists("/sys/fs/cgroup/memory/memory.limit_in_bytes") && !cgroup2Has("memory")) {
    problems.push(
      "this machine has no memory cgroup controller (neither cgroup v1 /sys/fs/cgroup/memory nor memory in cgroup v2), so the kubelet cannot enforce pod limits; use a machine or VM with cgroups",
    );
  }
  if (!(Deno.readTextFileSync("/proc/filesystems").includes("\toverlay"))) {
    problems.push("the kernel has no overlay file system, which containerd's snapshotter needs");
  }
  const runc = onPath("runc");
  if (!runc) problems.push("runc is not installed (apt-get install -y runc)");
  const cniBinDir = CNI_DIRS.find((dir) => exists(`${dir}/loopback`));
  if (!cniBinDir) {
    problems.push(
      `the CNI loopback plugin is not in ${
        CNI_DIRS.join(" or ")
      } (apt-get install -y containernetworking-plugins)`,
    );
  }
  const busybox = ["/bin/busybox", "/usr/bin/busybox"].find(exists);
  if (!busybox) problems.push("busybox is not installed (apt-get install -y busybox-static)");
  if (!onPath("podman")) {
    problems.push(
      "podman, which builds the node's images, is not installed (apt-get install -y podman)",
    );
  }
  const nodeIP = nodeAddress();
  if (!nodeIP) problems.push("this machine has no IPv4 address besides loopback for the node");
  if (problems.length > 0 || !runc || !cniBinDir || !busybox || !nodeIP) {
    throw new Error(`Cannot start the test node (a real kubelet): ${problems.join("; ")}`);
  }
  return { runc, cniBinDir, busybox, nodeIP };
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

function cgroup2Has(controller: string): boolean {
  try {
    return Deno.readTextFileSync("/sys/fs/cgroup/cgroup.controllers").split(/\s+/)
      .includes(controller);
  } catch {
    return false;
  }
}

/** The absolute path of `program` on PATH (plus the sbin directories), if any. */
function onPath(program: string): string | undefined {
  const dirs = [...(Deno.env.get("PATH") ?? "").split(":"), "/usr/sbin", "/sbin"];
  return dirs.filter(Boolean).map((dir) => `${dir}/${program}`).find(exists);
}
