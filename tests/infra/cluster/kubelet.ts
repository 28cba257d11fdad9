/**
 * The node's kubelet (v1.35.4, built with the control plane): its configuration file and
 * command line. Every setting that departs from the kubelet's defaults says why; the settings
 * this machine needs (a cgroup v1 host, no swap accounting, little disk, no root privileges to
 * raise limits) are explained in tests/infra/README.md.
 *
 * @module
 */

/** What the kubelet of one cluster needs to know. */
export interface KubeletContext {
  /** The cluster directory; the kubelet's files go to `<dir>/kubelet`. */
  dir: string;
  nodeName: string;
  /** The node's address: this machine's own, not loopback (the kubelet refuses that). */
  nodeIP: string;
  /** The kubelet's HTTPS port (logs, exec) on `nodeIP`. */
  port: number;
  /** Its health port on 127.0.0.1. */
  healthzPort: number;
  /** `unix://` endpoint of containerd's CRI. */
  runtimeEndpoint: string;
  /** The kubeconfig of the node identity. */
  kubeconfig: string;
  /** Serving certificate and key (signed by the cluster CA; SANs: node IP, name, loopback). */
  cert: string;
  key: string;
  /** CA whose client certificates the kubelet accepts (the apiserver's). */
  clientCA: string;
}

/** The kubelet's directories inside the cluster directory. */
export function kubeletPaths(dir: string): { root: string; config: string; podLogs: string } {
  return {
    root: `${dir}/kubelet/root`,
    config: `${dir}/kubelet/config.yaml`,
    podLogs: `${dir}/kubelet/pod-logs`,
  };
}

/**
 * The KubeletConfiguration. JSON is YAML, so it is written as JSON.
 *
 * - `failCgroupV1: false`: kubelet 1.35 refuses cgroup v1 hosts by default (KEP-5573); this
 *   machine has v1 controllers only.
 * - `cgroupDriver: cgroupfs`, `cgroupsPerQOS: false`, `enforceNodeAllocatable: []`: no systemd,
 *   and no QoS hierarchy; containerd puts each container in `/k8s.io/<container id>` of every
 *   hierarchy, which `cluster:down` removes for the cluster's containers.
 * - `failSwapOn: false`; relaxed eviction thresholds (small disks); image garbage collection off
 *   (the images cannot be pulled again).
 * - Authentication by client certificates of the cluster CA and by tokens (webhook), and
 *   webhook authorization: the apiserver reaches logs as `kube-apiserver-kubelet-client`, bound
 *   to `system:kubelet-api-admin` by `cluster:up`.
 *
 * @param context The cluster's node settings.
 * @returns The configuration file's text.
 */
export function kubeletConfig(context: KubeletContext): string {
  const paths = kubeletPaths(context.dir);
  const config = {
    apiVersion: "kubelet.config.k8s.io/v1beta1",
    kind: "KubeletConfiguration",
    failCgroupV1: false,
    cgroupDriver: "cgroupfs",
    cgroupsPerQOS: false,
    enforceNodeAllocatable: [],
    failSwapOn: false,
    containerRuntimeEndpoint: context.runtimeEndpoint,
    address: context.nodeIP,
    port: context.port,
    readOnlyPort: 0,
    healthzBindAddress: "127.0.0.1",
    healthzPort: context.healthzPort,
    tlsCertFile: context.cert,
    tlsPrivateKeyFile: context.key,
    rotateCertificates: false,
    serverTLSBootstrap: false,
    authentication: {
      anonymous: { enabled: false },
      webhook: { enabled: true },
      x509: { clientCAFile: context.clientCA },
    },
    authorization: { mode: "Webhook" },
    podLogsDir: paths.podLogs,
    volumePluginDir: `${context.dir}/kubelet/volume-plugins`,
    evictionHard: {
      "memory.available": "100Mi",
      "nodefs.available": "1%",
      "nodefs.inodesFree": "1%",
      "imagefs.available": "1%",
    },
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    // No graceful node shutdown: it needs systemd's inhibitor locks over D-Bus.
    shutdownGracePeriod: "0s",
    shutdownGracePeriodCriticalPods: "0s",
    serializeImagePulls: false,
    maxPods: 110,
  };
  return `${JSON.stringify(config, null, 2)}\n`;
}

/**
 * The kubelet's command line: what the configuration file cannot hold.
 *
 * @param context The cluster's node settings.
 * @returns The arguments.
 */
export function kubeletArgs(context: KubeletContext): string[] {
  const paths = kubeletPaths(context.dir);
  return [
    `--config=${paths.config}`,
    `--kubeconfig=${context.kubeconfig}`,
    `--root-dir=${paths.root}`,
    `--cert-dir=${context.dir}/kubelet/pki`,
    `--hostname-override=${context.nodeName}`,
    `--node-ip=${context.nodeIP}`,
    "--v=1",
  ];
}

/**
 * This machine's address for the node: the first IPv4 address of an interface that is up and
 * not loopback, preferring one outside the private ranges (host-network pods get it as theirs,
 * and no pod may have a private address here).
 *
 * @returns The address, or `undefined` when the machine has none.
 */
export function nodeAddress(): string | undefined {
  const candidates = Deno.networkInterfaces()
    .filter((i) => i.family === "IPv4" && !i.address.startsWith("127."))
    .map((i) => i.address);
  const isPrivate = (ip: string) => /^(10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.)/.test(ip);
  return candidates.find((ip) => !isPrivate(ip)) ?? candidates[0];
}
