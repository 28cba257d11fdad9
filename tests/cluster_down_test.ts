/**
 * Two test clusters run side by side, each with its own containerd and kubelet, and
 * `cluster:down` removes everything of one (processes, containers, cgroups, mounts, its /run
 * directory, the kubelet's log links) while the other's pods keep running.
 *
 * @module
 */

import assert from "node:assert/strict";
import { CoreV1Api } from "@kubernetes/client-node";
import { clusterTest, withNamespace } from "./infra/cluster/cluster.ts";
import { createPod, podSpec, shell, waitForPod } from "./infra/cluster/pods.ts";
import { readState } from "./infra/cluster/state.ts";

const running = {
  what: "to run",
  accept: (p: { status?: { phase?: string } }) => p.status?.phase === "Running",
};

// The test command may not read /proc or /sys itself (Deno asks --allow-all for them): the
// host is inspected through the same tools a person would use, and the cluster is started and
// stopped with its commands.

/** Run a shell command and return its standard output (it may fail: then its output so far). */
async function sh(script: string): Promise<string> {
  const { stdout } = await new Deno.Command("sh", {
    args: ["-c", script],
    stdout: "piped",
    stderr: "null",
  }).output();
  return new TextDecoder().decode(stdout);
}

/** `deno task cluster:up` or `cluster:down` for `dir`. */
async function clusterCommand(command: "up" | "down", dir: string): Promise<void> {
  const script = new URL(`./infra/cluster/${command}.ts`, import.meta.url).pathname;
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script, "--dir", dir],
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.equal(code, 0, `cluster:${command} failed: ${new TextDecoder().decode(stderr)}`);
}

/** Mount points under the given directories. */
async function mountsUnder(...dirs: string[]): Promise<string[]> {
  return (await sh("cat /proc/self/mountinfo")).split("\n").map((line) => line.split(" ")[4] ?? "")
    .filter((point) => dirs.some((dir) => point === dir || point.startsWith(`${dir}/`)));
}

clusterTest(
  "a second cluster runs beside this one, and cluster:down leaves nothing of it behind",
  (cluster) =>
    withNamespace(cluster, "beside", async (namespace) => {
      // A pod of this cluster, which must survive the other cluster's teardown.
      await createPod(cluster, { namespace, name: "stays", spec: podSpec(shell("sleep 600")) });
      await waitForPod(cluster, { namespace, name: "stays", ...running });

      const dir = await Deno.makeTempDir({ prefix: "kubeface-second-cluster-" });
      await clusterCommand("up", dir);
      let downed = false;
      try {
        const state = (await readState(dir))!;
        const runDir = state.node!.runDir;
        // kubectl, not client-node: an HTTP/2 session the apiserver ends when it stops crashes
        // Deno's nghttp2 (an assertion in find_stream_on_goaway_func).
        const kubectl = (args: string) =>
          sh(`'${state.kubectl}' --kubeconfig='${state.adminKubeconfig}' ${args}`);
        // A shell as PID 1 ignores SIGTERM: only the teardown's SIGKILL ends it.
        const pod = { metadata: { name: "left-running" }, spec: podSpec(shell("sleep 600")) };
        await kubectl(
          `create -f - <<'EOF'\n${JSON.stringify({ apiVersion: "v1", kind: "Pod", ...pod })}\nEOF`,
        );
        let containerId = "";
        for (let i = 0; i < 240 && !containerId; i++) {
          const status = await kubectl(
            "get pod left-running -o jsonpath='{.status.phase} {.status.containerStatuses[0].containerID}'",
          );
          const [phase, id = ""] = status.trim().split(" ");
          if (phase === "Running" && id) containerId = id.replace(/^\w+:\/\//, "");
          else await new Promise((resolve) => setTimeout(resolve, 250));
        }
        assert.ok(containerId, "the second cluster's pod runs");
        const cgroups = `ls -d /sys/fs/cgroup/*/k8s.io/${containerId} 2>/dev/null`;
        assert.notEqual(await sh(cgroups), "", "its container has cgroups");
        assert.notDeepEqual(await mountsUnder(runDir), [], "its root file system is mounted");

        await clusterCommand("down", dir);
        downed = true;

        const pids = state.processes.map((p) => p.pid).join(",");
        // A zombie has ended; it waits only for init, its parent since cluster:up exited, to reap it.
        const running = await sh(`ps -o stat=,pid= -p ${pids} | awk '$1 !~ /^Z/'`);
        assert.equal(running, "", "its processes are stopped");
        assert.equal(await sh(cgroups), "", "no cgroup of its container is left");
        assert.deepEqual(await mountsUnder(dir, runDir), [], "nothing under it is mounted");
        assert.equal(await sh(`ps -eo args= | grep -F '${runDir}' | grep -v grep`), "");
        assert.equal(await sh(`find /var/log/containers -lname '${dir}/*'`), "", "no log links");
        await assert.rejects(Deno.stat(runDir), Deno.errors.NotFound);
        await assert.rejects(Deno.stat(dir), Deno.errors.NotFound);
      } finally {
        if (!downed) await clusterCommand("down", dir);
      }

      // This cluster's pod ran on undisturbed.
      const core = cluster.kubeConfig.makeApiClient(CoreV1Api);
      const stays = await core.readNamespacedPod({ name: "stays", namespace });
      assert.equal(stays.status?.phase, "Running");
      assert.equal(stays.status?.containerStatuses?.[0]?.restartCount, 0);
      assert.ok(stays.status?.containerStatuses?.[0]?.state?.running, "still running");
    }),
);
