/**
 * The node's container runtime: containerd v2 with its CRI plugin, runc, and a loopback-only
 * CNI configuration (test pods use the host's network: no pod may get an address in a private
 * range here). Each cluster has its own containerd (root, state, sockets, runc root, shim
 * sockets), so two clusters can run side by side.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { runCommand } from "./run_command.ts";

/** Where one cluster's containerd keeps its files. */
export interface ContainerdPaths {
  /** `config.toml`. */
  config: string;
  /** Images and snapshots (on disk, under the cluster directory). */
  root: string;
  /** Runtime state: sockets, shim bundles, container root file systems. Under /run. */
  state: string;
  /** The gRPC socket (the CRI endpoint of the kubelet). */
  address: string;
  /** runc's state directory. */
  runcRoot: string;
  /** The shims' sockets. */
  shimSockets: string;
  /** The CNI configuration directory. */
  cniConf: string;
}

/**
 * The paths of the containerd of the cluster in `dir`. Sockets live under
 * `/run/kubeface-<hash of dir>/`: a shim's socket path (its directory plus 64 hex digits) must
 * stay under 106 bytes, which a cluster directory in the cache would pass.
 *
 * @param dir The cluster directory.
 * @returns The paths.
 */
export function containerdPaths(dir: string): ContainerdPaths {
  const run = runDir(dir);
  return {
    config: `${dir}/containerd/config.toml`,
    root: `${dir}/containerd/root`,
    state: `${run}/containerd`,
    address: `${run}/containerd.sock`,
    runcRoot: `${run}/runc`,
    shimSockets: `${run}/s`,
    cniConf: `${dir}/containerd/net.d`,
  };
}

/**
 * The directory under /run of the cluster in `dir`.
 *
 * @param dir The cluster directory.
 * @returns `/run/kubeface-<8 hex digits>`.
 */
export function runDir(dir: string): string {
  return `/run/kubeface-${createHash("sha256").update(dir).digest("hex").slice(0, 8)}`;
}

/** What {@link containerdConfig} needs besides the paths. */
export interface ContainerdSettings {
  /** The pinned sandbox image, imported before any pod starts. */
  sandboxImage: string;
  /** Absolute path of runc. */
  runc: string;
  /** Directory of the CNI plugins (Debian: /usr/lib/cni). */
  cniBinDir: string;
}

/**
 * containerd's `config.toml` (version 4, for containerd 2.x).
 *
 * - `restrict_oom_score_adj`: root here lacks CAP_SYS_RESOURCE, so runc cannot lower a
 *   container's oom_score_adj (the kubelet asks -998 for sandboxes); without it every sandbox
 *   fails with "can't get final child's PID from pipe: EOF".
 * - The sandbox image is pinned and never pulled; so is nothing else (the images are imported).
 * - No files outside the cluster's directories: no imports from /etc/containerd, the `opt`
 *   plugin (which creates /opt/containerd) is off, and so is NRI (/var/run/nri).
 *
 * @param paths The paths of {@link containerdPaths}.
 * @param settings The sandbox image, runc and the CNI plugins.
 * @returns The TOML text.
 */
export function containerdConfig(paths: ContainerdPaths, settings: ContainerdSettings): string {
  const q = (value: string) => `'${value}'`;
  return `version = 4
root = ${q(paths.root)}
state = ${q(paths.state)}
temp = ${q(`${paths.root}/tmp`)}
imports = []
disabled_plugins = ['io.containerd.internal.v1.opt', 'io.containerd.nri.v1.nri', 'io.containerd.snapshotter.v1.btrfs', 'io.containerd.snapshotter.v1.zfs', 'io.containerd.snapshotter.v1.devmapper']

[plugins]
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = 'overlayfs'
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = ${q(settings.sandboxImage)}

  [plugins.'io.containerd.cri.v1.runtime']
    restrict_oom_score_adj = true
    netns_mounts_under_state_dir = true
    cdi_spec_dirs = []
    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = 'runc'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
        runtime_type = 'io.containerd.runc.v2'
        disable_pause_image_pull = true
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
          BinaryName = ${q(settings.runc)}
          Root = ${q(paths.runcRoot)}
          SystemdCgroup = false
    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = [${q(settings.cniBinDir)}]
      conf_dir = ${q(paths.cniConf)}
      max_conf_num = 1

  [plugins.'io.containerd.grpc.v1.cri']
    stream_server_address = '127.0.0.1'
    stream_server_port = '0'

  [plugins.'io.containerd.server.v1.grpc']
    address = ${q(paths.address)}

  [plugins.'io.containerd.server.v1.ttrpc']
    address = ${q(`${paths.address}.ttrpc`)}

  [plugins.'io.containerd.shim.v1.manager']
    socket_dir = ${q(paths.shimSockets)}
`;
}

/**
 * The CNI configuration: loopback only. Sandboxes of host-network pods need no more, and the
 * CRI plugin reports the network ready once a configuration exists. A pod without host
 * networking gets no address and does not start.
 */
export const LOOPBACK_CNI = JSON.stringify(
  {
    cniVersion: "1.0.0",
    name: "kubeface-loopback",
    plugins: [{ type: "loopback" }],
  },
  null,
  2,
);

/**
 * Write the configuration files of the cluster's containerd.
 *
 * @param paths Where they go.
 * @param settings The sandbox image, runc and the CNI plugins.
 */
export async function writeContainerdConfig(
  paths: ContainerdPaths,
  settings: ContainerdSettings,
): Promise<void> {
  for (const dir of [paths.cniConf, paths.root, paths.state, paths.shimSockets]) {
    await Deno.mkdir(dir, { recursive: true });
  }
  await Deno.writeTextFile(paths.config, containerdConfig(paths, settings));
  await Deno.writeTextFile(`${paths.cniConf}/10-loopback.conflist`, `${LOOPBACK_CNI}\n`);
}

/**
 * Run `ctr` against the cluster's containerd in the `k8s.io` namespace (the CRI plugin's).
 *
 * @param ctr Path of ctr.
 * @param address The containerd socket.
 * @param args Arguments after the global flags.
 * @returns Standard output.
 * @throws {Error} When ctr exits non-zero.
 */
export function ctr(ctr: string, address: string, args: string[]): Promise<string> {
  return runCommand(ctr, { args: ["--address", address, "--namespace", "k8s.io", ...args] });
}
