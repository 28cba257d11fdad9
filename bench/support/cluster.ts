/**
 * The Kubernetes test control plane for benchmarks: the one named by
 * `KUBEFACE_TEST_KUBECONFIG` if set (left running), else one started in the
 * benchmark cache with the tests' `up()` and stopped again afterwards.
 *
 * @module
 */

import { join } from "node:path";
import { buildImage } from "../../lib/image/build.ts";
import { down, importImages, up } from "../../tests/infra/cluster/cluster.ts";
import { readState } from "../../tests/infra/cluster/state.ts";
import { kubectlPath } from "../../tests/infra/cluster/versions.ts";
import { benchCacheDir } from "./alternatives.ts";

/** A cluster to benchmark against. Dispose it to stop it if the benchmark started it. */
export interface BenchCluster extends AsyncDisposable {
  /** Admin kubeconfig. */
  kubeconfig: string;
  /** The pinned kubectl. */
  kubectl: string;
  /** Whether this benchmark started it (and so stops it). */
  owned: boolean;
  /** The worker image of this checkout, imported into the node, when it could be built. */
  workerImage?: string;
}

/** A cluster, or why none is available. */
export type ClusterOrReason = { ok: true; cluster: BenchCluster } | { ok: false; reason: string };

/** Build the worker image of this checkout, or say why not. */
async function workerImage(log: (line: string) => void): Promise<string | undefined> {
  try {
    return (await buildImage({ onProgress: (line) => log(`image: ${line}`) })).image;
  } catch (error) {
    log(`no worker image: ${(error as Error).message}`);
    return undefined;
  }
}

/**
 * Use the test cluster, starting one if none is named by `KUBEFACE_TEST_KUBECONFIG`, with the
 * worker image of this checkout imported into its node.
 */
export async function benchCluster(log: (line: string) => void): Promise<ClusterOrReason> {
  const named = Deno.env.get("KUBEFACE_TEST_KUBECONFIG");
  const image = await workerImage(log);
  if (named) {
    const dir = named.slice(0, named.lastIndexOf("/")) || ".";
    const state = await readState(dir);
    if (image && state?.node) await importImages(dir, [image], log);
    return {
      ok: true,
      cluster: {
        kubeconfig: named,
        kubectl: state?.kubectl ?? kubectlPath(),
        owned: false,
        workerImage: image && state?.node ? image : undefined,
        async [Symbol.asyncDispose]() {},
      },
    };
  }
  const dir = join(benchCacheDir(), "cluster");
  try {
    log(`starting a test cluster in ${dir} (set KUBEFACE_TEST_KUBECONFIG to use a running one)`);
    const cluster = await up({
      dir,
      images: image ? [image] : [],
      onProgress: (line) => log(`cluster: ${line}`),
    });
    return {
      ok: true,
      cluster: {
        kubeconfig: cluster.adminKubeconfig,
        kubectl: cluster.kubectl,
        owned: true,
        workerImage: image,
        async [Symbol.asyncDispose]() {
          log("stopping the test cluster");
          await down({ dir });
        },
      },
    };
  } catch (error) {
    return {
      ok: false,
      reason: `the test cluster could not start (deno task cluster:up): ${
        (error as Error).message.split("\n").slice(0, 5).join(" ")
      }`,
    };
  }
}

/**
 * The apiserver's count of requests it has served (the sum of
 * `apiserver_request_total` over every label set), read from `/metrics`.
 * Differences of two readings count every client's requests, the reading's
 * own included.
 *
 * @throws {Error} kubectl failed.
 */
export async function apiRequestCount(cluster: BenchCluster): Promise<number> {
  const out = await new Deno.Command(cluster.kubectl, {
    args: [`--kubeconfig=${cluster.kubeconfig}`, "get", "--raw", "/metrics"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`Cannot read the apiserver metrics: ${new TextDecoder().decode(out.stderr)}`);
  }
  let total = 0;
  for (const line of new TextDecoder().decode(out.stdout).split("\n")) {
    if (line.startsWith("apiserver_request_total{")) total += Number(line.split(" ").at(-1));
  }
  return total;
}

/** Run kubectl against the cluster; throws with its output when it fails. */
export async function kubectl(cluster: BenchCluster, args: string[]): Promise<string> {
  const out = await new Deno.Command(cluster.kubectl, {
    args: [`--kubeconfig=${cluster.kubeconfig}`, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`kubectl ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  return new TextDecoder().decode(out.stdout);
}
