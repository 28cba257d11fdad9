/**
 * Pinned versions of the test control plane and where their binaries are cached.
 *
 * @module
 */

/** The pinned Kubernetes release: kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kubelet. */
export const KUBERNETES_VERSION = "v1.35.4";

/**
 * The pinned etcd release (module `go.etcd.io/etcd/server/v3`). Kubernetes v1.35 is
 * tested against etcd 3.6; this is the newest 3.6 patch the Go module proxy serves.
 */
export const ETCD_VERSION = "v3.6.16";

/**
 * The pinned containerd release (module `github.com/containerd/containerd/v2`): the node's
 * container runtime. Kubernetes v1.35 is the last release that still accepts containerd 1.x;
 * Debian bookworm's 1.6 is out of support.
 */
export const CONTAINERD_VERSION = "v2.4.2";

/**
 * The pinned KWOK release (module `sigs.k8s.io/kwok`): simulated nodes for width tests. v0.8.0
 * needs Go 1.26 and client-go v0.36.1, both resolved by `go install` without replace lines.
 */
export const KWOK_VERSION = "v0.8.0";

/** The containerd binaries built from `github.com/containerd/containerd/v2`, by file name. */
export const CONTAINERD_BINARIES = ["containerd", "ctr", "containerd-shim-runc-v2"] as const;

/** The Kubernetes binaries built from `k8s.io/kubernetes`, by file name. */
export const KUBERNETES_BINARIES = [
  "kube-apiserver",
  "kube-controller-manager",
  "kube-scheduler",
  "kubectl",
  "kubelet",
] as const;

/** One of {@link KUBERNETES_BINARIES}. */
export type KubernetesBinary = typeof KUBERNETES_BINARIES[number];

/**
 * The cache root: `$KUBEFACE_CACHE_DIR`, else `${XDG_CACHE_HOME:-$HOME/.cache}/kubeface`.
 *
 * @returns An absolute directory path (it may not exist yet).
 * @throws {Error} When neither `KUBEFACE_CACHE_DIR`, `XDG_CACHE_HOME` nor `HOME` is set.
 */
export function cacheRoot(): string {
  const explicit = Deno.env.get("KUBEFACE_CACHE_DIR");
  if (explicit) return explicit;
  const xdg = Deno.env.get("XDG_CACHE_HOME");
  if (xdg) return `${xdg}/kubeface`;
  const home = Deno.env.get("HOME");
  if (!home) {
    throw new Error(
      "Cannot locate the cache directory: HOME is not set; set KUBEFACE_CACHE_DIR or XDG_CACHE_HOME",
    );
  }
  return `${home}/.cache/kubeface`;
}

/** Directory holding the Kubernetes binaries of {@link KUBERNETES_VERSION}. */
export function kubernetesBinDir(root: string = cacheRoot()): string {
  return `${root}/cluster/${KUBERNETES_VERSION}/bin`;
}

/** Directory holding the etcd binary of {@link ETCD_VERSION}. */
export function etcdBinDir(root: string = cacheRoot()): string {
  return `${root}/cluster/etcd-${ETCD_VERSION}/bin`;
}

/** Directory holding the containerd binaries of {@link CONTAINERD_VERSION}. */
export function containerdBinDir(root: string = cacheRoot()): string {
  return `${root}/cluster/containerd-${CONTAINERD_VERSION}/bin`;
}

/** Directory holding the `kwok` binary of {@link KWOK_VERSION}. */
export function kwokBinDir(root: string = cacheRoot()): string {
  return `${root}/cluster/kwok-${KWOK_VERSION}/bin`;
}

/** Default state directory of a running cluster (`cluster:up` without `--dir`). */
export function defaultRunDir(root: string = cacheRoot()): string {
  return `${root}/cluster/run`;
}

/** Absolute path of the pinned `kubectl` binary (built by `cluster:up`). */
export function kubectlPath(root: string = cacheRoot()): string {
  return `${kubernetesBinDir(root)}/kubectl`;
}
