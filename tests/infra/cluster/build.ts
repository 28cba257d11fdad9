/**
 * Build the pinned control-plane binaries with `go build` from the Go module proxy, once per
 * version: each build happens in a throwaway module and the binaries land in the cache
 * directory ({@link kubernetesBinDir}, {@link etcdBinDir}), where later runs find them.
 *
 * @module
 */

import {
  allExist,
  downloadGoMod,
  go,
  install,
  throwawayModule,
  timed,
  toolsGo,
} from "./go_build.ts";
import {
  cacheRoot,
  ETCD_VERSION,
  etcdBinDir,
  KUBERNETES_BINARIES,
  KUBERNETES_VERSION,
  kubernetesBinDir,
} from "./versions.ts";

/** Absolute paths of every binary the cluster runs. */
export interface Binaries {
  etcd: string;
  kubeApiserver: string;
  kubeControllerManager: string;
  kubeScheduler: string;
  kubectl: string;
  kubelet: string;
}

/** Options of {@link ensureBinaries}. */
export interface EnsureBinariesOptions {
  /** Cache root (see `cacheRoot()` in versions.ts). @default cacheRoot() */
  root?: string;
  /** Receives one line per build step. @default () => {} */
  onProgress?: (line: string) => void;
}

/** Build dates are not reproducible from a module zip; every build stamps this one. */
const BUILD_DATE = "2026-01-01T00:00:00Z";

/**
 * Return the paths of the pinned binaries, building the ones that are missing.
 *
 * @param options Cache root and a progress callback.
 * @returns Absolute paths of etcd and the Kubernetes binaries.
 * @throws {Error} When `go` fails; the message carries the command and its stderr.
 */
export async function ensureBinaries(options: EnsureBinariesOptions = {}): Promise<Binaries> {
  const { root = cacheRoot(), onProgress = () => {} } = options;
  const k8sDir = kubernetesBinDir(root);
  const etcdDir = etcdBinDir(root);
  if (!(await allExist(KUBERNETES_BINARIES.map((name) => `${k8sDir}/${name}`)))) {
    await timed(
      `Kubernetes ${KUBERNETES_VERSION}`,
      onProgress,
      () => buildKubernetes(root, k8sDir),
    );
  }
  if (!(await allExist([`${etcdDir}/etcd`]))) {
    await timed(`etcd ${ETCD_VERSION}`, onProgress, () => buildEtcd(root, etcdDir));
  }
  return {
    etcd: `${etcdDir}/etcd`,
    kubeApiserver: `${k8sDir}/kube-apiserver`,
    kubeControllerManager: `${k8sDir}/kube-controller-manager`,
    kubeScheduler: `${k8sDir}/kube-scheduler`,
    kubectl: `${k8sDir}/kubectl`,
    kubelet: `${k8sDir}/kubelet`,
  };
}

/**
 * Build kube-apiserver, kube-controller-manager, kube-scheduler, kubectl and kubelet of
 * {@link KUBERNETES_VERSION} into `binDir`.
 */
async function buildKubernetes(root: string, binDir: string): Promise<void> {
  const module = await throwawayModule(root, "k8s");
  try {
    const upstream = await downloadGoMod(module, `k8s.io/kubernetes@${KUBERNETES_VERSION}`);
    await Deno.writeTextFile(
      `${module}/go.mod`,
      kubernetesBuildGoMod(upstream, KUBERNETES_VERSION),
    );
    const packages = KUBERNETES_BINARIES.map((name) => `k8s.io/kubernetes/cmd/${name}`);
    await Deno.writeTextFile(`${module}/tools.go`, toolsGo(packages));
    await go(module, ["mod", "tidy"]);
    const [major = "", minor = ""] = KUBERNETES_VERSION.slice(1).split(".");
    const stamp = (pkg: string) => [
      `-X ${pkg}.gitVersion=${KUBERNETES_VERSION}`,
      `-X ${pkg}.gitMajor=${major}`,
      `-X ${pkg}.gitMinor=${minor}`,
    ];
    const ldflags = [
      "-s -w",
      ...stamp("k8s.io/component-base/version"),
      "-X k8s.io/component-base/version.gitTreeState=clean",
      `-X k8s.io/component-base/version.buildDate=${BUILD_DATE}`,
      ...stamp("k8s.io/client-go/pkg/version"),
    ].join(" ");
    const out = `${module}/out`;
    await Deno.mkdir(out);
    await go(module, [
      "build",
      "-trimpath",
      "-tags",
      "selinux,notest",
      "-ldflags",
      ldflags,
      "-o",
      `${out}/`,
      ...packages,
    ]);
    await install(out, binDir, [...KUBERNETES_BINARIES]);
  } finally {
    await Deno.remove(module, { recursive: true });
  }
}

/** Build etcd {@link ETCD_VERSION} (`package main` of `go.etcd.io/etcd/server/v3`) into `binDir`. */
async function buildEtcd(root: string, binDir: string): Promise<void> {
  const module = await throwawayModule(root, "etcd");
  try {
    const serverModule = "go.etcd.io/etcd/server/v3";
    const upstream = await downloadGoMod(module, `${serverModule}@${ETCD_VERSION}`);
    const goLine = upstream.match(/^go \S+$/m)?.[0] ?? "go 1.25.0";
    await Deno.writeTextFile(
      `${module}/go.mod`,
      `module kubeface.local/etcdbuild\n\n${goLine}\n\nrequire ${serverModule} ${ETCD_VERSION}\n`,
    );
    await Deno.writeTextFile(`${module}/tools.go`, toolsGo([serverModule]));
    await go(module, ["mod", "tidy"]);
    const out = `${module}/out`;
    await Deno.mkdir(out);
    await go(module, [
      "build",
      "-trimpath",
      "-ldflags",
      "-s -w",
      "-o",
      `${out}/etcd`,
      serverModule,
    ]);
    await install(out, binDir, ["etcd"]);
  } finally {
    await Deno.remove(module, { recursive: true });
  }
}

/**
 * The go.mod of the throwaway Kubernetes build module. k8s.io/kubernetes requires its staging
 * modules at `v0.0.0` and replaces them with local paths, which Go ignores in a dependency;
 * every such requirement becomes `replace k8s.io/<m> => k8s.io/<m> v0.<minor>.<patch>`.
 *
 * @param upstream The text of k8s.io/kubernetes' own go.mod.
 * @param version The Kubernetes version, e.g. `v1.35.4`.
 * @returns The go.mod text (before `go mod tidy`).
 */
export function kubernetesBuildGoMod(upstream: string, version: string): string {
  const stagingVersion = version.replace(/^v1\./, "v0.");
  const goLine = upstream.match(/^go \S+$/m)?.[0] ?? "go 1.25.0";
  const godebug = upstream.match(/^godebug .*$/gm) ?? [];
  const staging = [...upstream.matchAll(/^\s*(k8s\.io\/[\w.\-/]+) v0\.0\.0\s*$/gm)]
    .map((match) => match[1])
    .filter((name): name is string => name !== undefined);
  if (staging.length === 0) {
    throw new Error(`Cannot find the v0.0.0 staging requirements in the go.mod of ${version}`);
  }
  return [
    "module kubeface.local/clusterbuild",
    "",
    goLine,
    "",
    ...godebug,
    "",
    `require k8s.io/kubernetes ${version}`,
    "",
    ...staging.map((name) => `replace ${name} => ${name} ${stagingVersion}`),
    "",
  ].join("\n");
}
