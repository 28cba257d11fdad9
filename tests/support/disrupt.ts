/**
 * Disrupting a running task from outside, the way each backend's workers
 * are lost in real life: `kill` stops it with no notice (a local worker
 * SIGKILLed, a container killed, a pod deleted at once), `stop` with notice
 * (SIGTERM to a local worker, `podman stop`, a pod evicted as a drain or a
 * preemption does it).
 *
 * @module
 */

import { CoreV1Api, type V1Pod } from "@kubernetes/client-node";
import { containerName } from "../../lib/backends/container_run.ts";
import { JOB_LABEL, jobLabel } from "../../lib/backends/kubernetes/names.ts";
import { testCli } from "./container.ts";
import { type Target, testNamespace } from "./targets.ts";
import { waitFor } from "./jobs.ts";

const INDEX_LABEL = "batch.kubernetes.io/job-completion-index";

/** Where a running attempt of one task is, to disrupt it, as the task reported it. */
export interface Victim {
  job: string;
  task: number;
  /** The attempt's id (`ctx.attempt`). */
  attempt: string;
  /** The worker process's id, as the task saw it (`Deno.pid`). */
  pid: number;
}

function cli(args: string[]): { code: number; stderr: string } {
  const out = new Deno.Command(testCli()!, { args, stdout: "null", stderr: "piped" })
    .outputSync();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

/** The running pod of a task (its Job's index runs the victim's attempt). */
async function podOf(victim: Victim): Promise<V1Pod> {
  const { cluster, namespace } = await testNamespace();
  const core = cluster.kubeConfig.makeApiClient(CoreV1Api);
  return await waitFor(`the pod of task ${victim.task}`, async () => {
    const pods = (await core.listNamespacedPod({
      namespace,
      labelSelector: `${JOB_LABEL}=${jobLabel(victim.job)}`,
    })).items;
    // The index of a first submission is the task; later ones are looked up in the run map.
    return pods.find((p) =>
      p.status?.phase === "Running" && !p.metadata?.deletionTimestamp &&
      p.metadata?.labels?.[INDEX_LABEL] === String(victim.task)
    );
  });
}

/** Stop the victim at once, with no notice and no grace. */
export async function kill(target: Target, victim: Victim): Promise<void> {
  switch (target.backend) {
    case "local":
    case "warm":
      return Deno.kill(victim.pid, "SIGKILL");
    case "container": {
      const name = containerName(victim.job, victim);
      const out = cli(["kill", name]);
      if (out.code !== 0) throw new Error(`could not kill container ${name}: ${out.stderr}`);
      return;
    }
    case "kubernetes": {
      const { cluster, namespace } = await testNamespace();
      const pod = await podOf(victim);
      await cluster.kubeConfig.makeApiClient(CoreV1Api).deleteNamespacedPod({
        name: pod.metadata!.name!,
        namespace,
        gracePeriodSeconds: 0,
      });
      return;
    }
  }
}

/**
 * Stop the victim with notice: SIGTERM, as a preemption, a drain or a
 * container stop does. Resolves once the notice is given.
 */
export async function stop(target: Target, victim: Victim): Promise<void> {
  switch (target.backend) {
    case "local":
    case "warm":
      return Deno.kill(victim.pid, "SIGTERM");
    case "container": {
      // `stop` waits for the container to end: the job goes on meanwhile.
      const name = containerName(victim.job, victim);
      new Deno.Command(testCli()!, { args: ["stop", name], stdout: "null", stderr: "null" })
        .spawn();
      return;
    }
    case "kubernetes": {
      // An eviction, as a drain or a preemption makes: the pod gets DisruptionTarget.
      const { cluster, namespace } = await testNamespace();
      const pod = await podOf(victim);
      const name = pod.metadata!.name!;
      await cluster.kubeConfig.makeApiClient(CoreV1Api).createNamespacedPodEviction({
        name,
        namespace,
        body: { apiVersion: "policy/v1", kind: "Eviction", metadata: { name, namespace } },
      });
      return;
    }
  }
}
