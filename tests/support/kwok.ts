/**
 * Running kubeface jobs on the KWOK pool of the test cluster: the pool is grown on demand (kwok
 * is started in the cluster's directory, so `cluster:down` stops it), the jobs' pods are placed
 * on KWOK nodes only, and a {@link KwokResultWriter} stores each pod's result as its worker
 * would.
 *
 * @module
 */

import type { KubernetesBackendOptions } from "../../lib/backends/kubernetes/options.ts";
import { openStorage } from "../../lib/storage/storage.ts";
import type { Storage } from "../../lib/storage/storage.ts";
import { addKwokNodes, kwokPlacement } from "../infra/cluster/kwok.ts";
import { KwokResultWriter, type KwokResultWriterOptions } from "../infra/kwok_results.ts";
import type { KubernetesTestContext } from "./targets.ts";

/** Options of {@link withKwok}. */
export interface WithKwokOptions
  extends Pick<KwokResultWriterOptions, "compute" | "runtimeMs" | "concurrency"> {
  /** Size of the KWOK pool (it is only ever grown). @default 10 */
  nodes?: number;
}

/** What {@link withKwok} hands the test. */
export interface KwokContext {
  /** The Kubernetes backend options of the test, with the pods placed on KWOK nodes. */
  kubernetes: KubernetesBackendOptions;
  /** The writer of the pods' results. */
  writer: KwokResultWriter;
  /** The test's storage, opened. */
  storage: Storage;
  /** Names of the pool's nodes. */
  nodes: string[];
}

/**
 * Run `fn` with a KWOK pool, a result writer watching the test's namespace, and backend options
 * that put the pods on the pool. Problems of the writer fail the test.
 *
 * @param ctx The Kubernetes test's context.
 * @param options Pool size and what the tasks compute.
 * @param fn The test.
 * @returns What `fn` returns.
 */
export async function withKwok<T>(
  ctx: KubernetesTestContext,
  options: WithKwokOptions,
  fn: (kwok: KwokContext) => Promise<T>,
): Promise<T> {
  const nodes = await addKwokNodes({ dir: ctx.cluster.dir, nodes: options.nodes ?? 10 });
  await using storage = await openStorage(ctx.storage);
  const problems: string[] = [];
  await using writer = await KwokResultWriter.start({
    kubeConfig: ctx.cluster.kubeConfig,
    namespace: ctx.namespace,
    storage,
    ...options,
    onProblem: (line) => problems.push(line),
  });
  const { podTemplatePatch: _hostNetwork, ...rest } = ctx.client.kubernetes ?? {};
  const result = await fn({
    kubernetes: { ...rest, ...kwokPlacement() },
    writer,
    storage,
    nodes: nodes.filter((name) => name.startsWith("kwok-")),
  });
  if (problems.length > 0) {
    throw new Error(`The KWOK result writer failed:\n${problems.join("\n")}`);
  }
  return result;
}

/**
 * Count the stored results of a job by task and kind.
 *
 * @param storage The job's storage.
 * @param prefix The job's results prefix (`JobLayout.resultsPrefix`).
 * @returns For each task, the number of `.ok` and `.error` objects.
 */
export async function resultCounts(
  storage: Storage,
  prefix: string,
): Promise<Map<number, { ok: number; error: number }>> {
  const counts = new Map<number, { ok: number; error: number }>();
  for await (const { key } of storage.list(prefix)) {
    const match = /^(\d+)\/[^/]+\.(ok|error)$/.exec(key.slice(prefix.length));
    if (!match) continue;
    const task = Number(match[1]);
    const count = counts.get(task) ?? { ok: 0, error: 0 };
    count[match[2] as "ok" | "error"]++;
    counts.set(task, count);
  }
  return counts;
}
