// deno-lint-ignore-file no-console
/**
 * What tests use to reach the test cluster.
 *
 * Tests run against a cluster started beforehand (`deno task cluster:up`, or
 * `with_cluster.ts`), whose admin kubeconfig is named by `KUBEFACE_TEST_KUBECONFIG`.
 * `clusterTest()` skips its test with a printed reason when that variable is unset, and fails it
 * when `CI=true`, so CI can never pass by skipping.
 *
 * @example Run a test against the cluster
 * ```ts ignore
 * import { CoreV1Api } from "@kubernetes/client-node";
 * import { clusterTest } from "./infra/cluster/cluster.ts";
 *
 * clusterTest("the node is listed", async (cluster) => {
 *   const core = cluster.kubeConfig.makeApiClient(CoreV1Api);
 *   await core.listNode();
 * });
 * ```
 *
 * @module
 */

import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { importImages as importInto } from "./node_images.ts";
import { readState, writeState } from "./state.ts";
import { kubectlPath, KUBERNETES_VERSION } from "./versions.ts";

export { type RunningCluster, up, type UpOptions } from "./up.ts";
export { down, type DownOptions } from "./down.ts";

/** The environment variable holding the admin kubeconfig path of the test cluster. */
export const KUBECONFIG_ENV = "KUBEFACE_TEST_KUBECONFIG";

/** A running test cluster, as tests see it. */
export interface TestCluster {
  /** Admin kubeconfig (user `kubeface-admin`, group `system:masters`). */
  adminKubeconfig: string;
  /** Non-admin kubeconfig (user `kubeface-test-user`, no groups): bind Roles to it. */
  userKubeconfig: string;
  /** The user name of {@link TestCluster.userKubeconfig}. */
  userName: string;
  /** The pinned kubectl. */
  kubectl: string;
  /** Loaded admin configuration. */
  kubeConfig: KubeConfig;
  /** Loaded non-admin configuration. */
  userKubeConfig: KubeConfig;
  /** The pinned Kubernetes version, e.g. `v1.35.4`. */
  version: string;
  /** Name of the node (a real kubelet) that runs the pods. */
  nodeName: string;
  /** The cluster directory (where state.json is). */
  dir: string;
  /** Images imported into the node (as pods name them); nothing else can run. */
  images: string[];
}

let cached: Promise<TestCluster | undefined> | undefined;

/**
 * The test cluster named by `KUBEFACE_TEST_KUBECONFIG`, or `undefined` when it is unset.
 *
 * @returns Paths and loaded configurations; `user.kubeconfig` is read from beside the admin one.
 * @throws {Error} When the variable names a file that does not exist.
 */
export function testCluster(): Promise<TestCluster | undefined> {
  cached ??= load();
  return cached;
}

async function load(): Promise<TestCluster | undefined> {
  const adminKubeconfig = Deno.env.get(KUBECONFIG_ENV);
  if (!adminKubeconfig) return undefined;
  const dir = adminKubeconfig.slice(0, adminKubeconfig.lastIndexOf("/") + 1) || "./";
  const userKubeconfig = `${dir}user.kubeconfig`;
  for (const path of [adminKubeconfig, userKubeconfig]) {
    try {
      await Deno.stat(path);
    } catch {
      throw new Error(
        `Cannot read the test cluster kubeconfig "${path}" named by ${KUBECONFIG_ENV}; start the cluster with deno task cluster:up`,
      );
    }
  }
  const state = await readState(dir);
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(adminKubeconfig);
  const userKubeConfig = new KubeConfig();
  userKubeConfig.loadFromFile(userKubeconfig);
  return {
    adminKubeconfig,
    userKubeconfig,
    userName: userKubeConfig.getCurrentUser()?.name ?? "kubeface-test-user",
    kubectl: state?.kubectl ?? kubectlPath(),
    kubeConfig,
    userKubeConfig,
    version: state?.version ?? KUBERNETES_VERSION,
    nodeName: state?.nodeName ?? "kubeface-node-1",
    dir,
    images: state?.images ?? [],
  };
}

/**
 * Import images from podman's store into the node of the cluster in `dir` (e.g. a worker image
 * built after `cluster:up`), and record them in its state.
 *
 * @param dir The cluster directory.
 * @param images Image names as pods give them (tagged).
 * @param onProgress Receives progress lines.
 * @throws {Error} When `dir` holds no running node, or podman or ctr fails.
 */
export async function importImages(
  dir: string,
  images: string[],
  onProgress: (line: string) => void = () => {},
): Promise<void> {
  const state = await readState(dir);
  if (!state?.node) throw new Error(`Cannot import images: no test node runs in ${dir}`);
  await importInto(images, {
    ctr: state.node.ctr,
    address: state.node.containerdAddress,
    onProgress,
  });
  state.images = [...new Set([...(state.images ?? []), ...images])];
  await writeState(dir, state);
}

let skipNoticePrinted = false;

/**
 * Register a Deno test that needs the test cluster. Its name gets the prefix `cluster: ` so
 * `deno test --filter cluster:` selects these tests.
 *
 * Without `KUBEFACE_TEST_KUBECONFIG` the test is ignored and a line says why; with `CI=true`
 * it fails instead.
 *
 * @param name What the test shows, phrased as a behaviour.
 * @param fn The test body, given the cluster and the test's context (for steps).
 */
export function clusterTest(
  name: string,
  fn: (cluster: TestCluster, t: Deno.TestContext) => Promise<void>,
): void {
  const configured = Boolean(Deno.env.get(KUBECONFIG_ENV));
  const ci = Deno.env.get("CI") === "true";
  if (!configured && !ci && !skipNoticePrinted) {
    skipNoticePrinted = true;
    console.log(
      `Skipping cluster tests: ${KUBECONFIG_ENV} is not set (start a cluster with deno task cluster:up and export ${KUBECONFIG_ENV}=<dir>/admin.kubeconfig)`,
    );
  }
  Deno.test({
    name: `cluster: ${name}`,
    ignore: !configured && !ci,
    // Client-node keeps HTTP agents and timers alive between calls.
    sanitizeOps: false,
    sanitizeResources: false,
    async fn(t) {
      const cluster = await testCluster();
      if (!cluster) {
        throw new Error(
          `Cannot run cluster tests: CI=true but ${KUBECONFIG_ENV} is not set; .ci/run must start the cluster (deno task cluster:up) and export it`,
        );
      }
      await fn(cluster, t);
    },
  });
}

/**
 * Run `fn` in a fresh namespace, deleted afterwards (without waiting for the deletion).
 * It waits for the namespace's `default` ServiceAccount, which pods need.
 *
 * @param cluster The cluster.
 * @param prefix Start of the namespace name.
 * @param fn Receives the namespace name.
 * @returns What `fn` returns.
 */
export async function withNamespace<T>(
  cluster: TestCluster,
  prefix: string,
  fn: (namespace: string) => Promise<T>,
): Promise<T> {
  const core = cluster.kubeConfig.makeApiClient(CoreV1Api);
  const suffix = crypto.randomUUID().slice(0, 8);
  const namespace = `${prefix}-${suffix}`.toLowerCase().replace(/[^a-z0-9-]/g, "-").slice(0, 63);
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  try {
    await pollUntil(`the default ServiceAccount of ${namespace}`, async () => {
      try {
        return await core.readNamespacedServiceAccount({ name: "default", namespace });
      } catch {
        return undefined;
      }
    });
    return await fn(namespace);
  } finally {
    await core.deleteNamespace({ name: namespace, propagationPolicy: "Background" }).catch(
      () => {},
    );
  }
}

/** Options of {@link pollUntil}. */
export interface PollOptions {
  /** Give up after this many milliseconds. @default 60_000 */
  timeoutMs?: number;
  /** Time between attempts. @default 250 */
  intervalMs?: number;
}

/**
 * Call `probe` until it returns a value other than `undefined`.
 *
 * @param what What is awaited, for the error message.
 * @param probe Returns the awaited value, or `undefined` when it is not there yet.
 * @param options Timeout and interval.
 * @returns The value.
 * @throws {Error} When the time is up.
 */
export async function pollUntil<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  options: PollOptions = {},
): Promise<T> {
  const { timeoutMs = 60_000, intervalMs = 250 } = options;
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) {
      throw new Error(`Timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Output of {@link kubectl}. */
export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Run the pinned kubectl against the cluster (admin unless another kubeconfig is given).
 *
 * @param cluster The cluster.
 * @param args kubectl arguments.
 * @param kubeconfig The kubeconfig to use. @default cluster.adminKubeconfig
 * @returns Exit code and output; a non-zero exit does not throw.
 */
export async function kubectl(
  cluster: TestCluster,
  args: string[],
  kubeconfig: string = cluster.adminKubeconfig,
): Promise<KubectlResult> {
  const output = await new Deno.Command(cluster.kubectl, {
    args: [`--kubeconfig=${kubeconfig}`, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}
