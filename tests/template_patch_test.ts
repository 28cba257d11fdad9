/**
 * The pod template patch (`kubernetes.podTemplatePatch`, `--pod-template-patch FILE`): a
 * strategic-merge patch, as kubectl applies to pod specs. Whether the API server accepts the
 * patched Job is checked against the test cluster in kubernetes_test.ts.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { V1Job } from "@kubernetes/client-node";
import { jobSpec } from "../lib/backends/kubernetes/job_spec.ts";
import { KubernetesBackend } from "../lib/backends/kubernetes/kubernetes.ts";
import {
  applyTemplatePatch,
  parseTemplatePatch,
} from "../lib/backends/kubernetes/template_patch.ts";
import { JobLayout } from "../lib/format/layout.ts";
import { openStorage, type Storage } from "../lib/storage/storage.ts";
import { kubeface } from "./support/cli.ts";

const template = {
  metadata: { labels: { app: "kubeface" }, finalizers: ["a"] },
  spec: {
    restartPolicy: "Never",
    volumes: [{ name: "scratch", emptyDir: {} }],
    tolerations: [{ key: "old" }],
    containers: [{
      name: "worker",
      image: "denoland/deno:2.9.6",
      command: ["deno", "eval", "…"],
      env: [{ name: "A", value: "1" }, { name: "B", value: "2" }],
      volumeMounts: [{ name: "scratch", mountPath: "/tmp" }],
    }],
  },
};

function job(storage: Storage, podTemplatePatch: Record<string, unknown>): V1Job {
  return jobSpec({
    job: {
      key: "patched",
      storage,
      layout: new JobLayout("patched"),
      permissions: {},
      parallelism: 1,
      env: {},
      tasks: 1,
      maxRetries: 0,
      timeoutMs: undefined,
    },
    options: { podTemplatePatch },
    namespace: "default",
    name: "kf-patched",
    completions: 1,
    runtime: undefined,
  });
}

Deno.test("a patch adds a secret volume and mounts it into the worker without restating it", () => {
  const out = applyTemplatePatch(template, {
    spec: {
      volumes: [{ name: "creds", secret: { secretName: "creds" } }],
      containers: [{ name: "worker", volumeMounts: [{ name: "creds", mountPath: "/creds" }] }],
    },
  });
  assert.deepEqual(out.spec.volumes, [
    { name: "scratch", emptyDir: {} },
    { name: "creds", secret: { secretName: "creds" } },
  ]);
  const [worker] = out.spec.containers;
  assert.equal(worker!.image, "denoland/deno:2.9.6", "fields not in the patch are kept");
  assert.deepEqual(worker!.volumeMounts, [
    { name: "scratch", mountPath: "/tmp" },
    { name: "creds", mountPath: "/creds" },
  ]);
  assert.equal(template.spec.volumes.length, 1, "the template itself is not changed");
});

Deno.test("a patch merges env by name, replaces lists without a merge key, and removes with null", () => {
  const out = applyTemplatePatch(template, {
    metadata: { finalizers: ["b", "a"] },
    spec: {
      restartPolicy: null,
      tolerations: [{ key: "new", operator: "Exists" }],
      containers: [{
        name: "worker",
        env: [{ name: "B", value: "two" }, { name: "C", value: "3" }],
      }],
    },
  });
  assert.deepEqual(out.spec.containers[0]!.env, [
    { name: "A", value: "1" },
    { name: "B", value: "two" },
    { name: "C", value: "3" },
  ]);
  assert.deepEqual(out.spec.tolerations, [{ key: "new", operator: "Exists" }]);
  assert.equal("restartPolicy" in out.spec, false);
  assert.deepEqual(out.metadata.finalizers, ["a", "b"], "finalizers merge as a set");
});

Deno.test("$patch: delete removes a list element or a field, $patch: replace replaces", () => {
  const out = applyTemplatePatch(template, {
    spec: {
      volumes: [{ name: "scratch", $patch: "delete" }, { name: "data", hostPath: { path: "/d" } }],
      containers: [{
        name: "worker",
        env: [{ $patch: "replace" }, { name: "ONLY", value: "1" }],
        volumeMounts: [{ mountPath: "/tmp", $patch: "delete" }],
      }, { name: "sidecar", image: "busybox:1.36" }],
      securityContext: { $patch: "replace", runAsUser: 7 },
    },
  });
  assert.deepEqual(out.spec.volumes, [{ name: "data", hostPath: { path: "/d" } }]);
  assert.deepEqual(out.spec.containers[0]!.env, [{ name: "ONLY", value: "1" }]);
  assert.deepEqual(out.spec.containers[0]!.volumeMounts, []);
  assert.deepEqual(out.spec.containers.map((c) => c.name), ["worker", "sidecar"]);
  assert.deepEqual((out.spec as Record<string, unknown>).securityContext, { runAsUser: 7 });
});

Deno.test("a Job's pods get the patch, and kubeface's labels and worker container stay", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kubeface-patch-" });
  await using storage = await openStorage(dir);
  const spec = job(storage, {
    metadata: { labels: { "kubeface.dev/job": "hijacked", team: "genomics" } },
    spec: {
      hostNetwork: true,
      priorityClassName: "batch-low",
      initContainers: [{ name: "proxy", image: "proxy:1", restartPolicy: "Always" }],
    },
  });
  const pod = spec.spec!.template;
  assert.equal(pod.spec?.hostNetwork, true);
  assert.equal(pod.spec?.priorityClassName, "batch-low");
  assert.equal(pod.spec?.initContainers?.[0]?.name, "proxy");
  assert.equal(pod.metadata?.labels?.team, "genomics");
  assert.match(pod.metadata?.labels?.["kubeface.dev/job"] ?? "", /^patched-/);
  const replacing = { spec: { containers: [{ $patch: "replace" }, { name: "other" }] } };
  assert.throws(() => job(storage, replacing), {
    name: "TypeError",
    message:
      "Cannot apply the pod template patch: it removes the container 'worker' that runs the task; patch that container by name instead of replacing the list",
  });
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a malformed patch is rejected before anything is created, naming the place", () => {
  assert.throws(() => new KubernetesBackend({ podTemplatePatch: { containers: [] } }), {
    name: "TypeError",
    message:
      "Cannot apply the pod template patch: 'containers' is not a field of a pod template; patch metadata or spec, e.g. {spec: {hostNetwork: true}}",
  });
  assert.throws(
    () => new KubernetesBackend({ podTemplatePatch: { spec: { volumes: [{ secret: {} }] } } }),
    {
      name: "TypeError",
      message:
        "Cannot apply the pod template patch: spec.volumes[0] has no 'name', which spec.volumes is merged by; add it",
    },
  );
  assert.throws(
    () => new KubernetesBackend({ podTemplatePatch: { spec: { $retainKeys: ["a"] } } }),
    { name: "TypeError", message: /spec\.\$retainKeys is a directive kubeface does not know/ },
  );
});

Deno.test("a patch given as YAML text is read when the backend is made, and checked the same", () => {
  assert.throws(
    () => new KubernetesBackend({ podTemplatePatch: "spec:\n  volumes:\n  - secret: {}\n" }),
    {
      name: "TypeError",
      message:
        "Cannot use the pod template patch 'podTemplatePatch': spec.volumes[0] has no 'name', which spec.volumes is merged by; add it",
    },
  );
  assert.throws(() => new KubernetesBackend({ podTemplatePatch: "spec: [1,\n" }), {
    message: /^Cannot read the pod template patch 'podTemplatePatch': it is not valid YAML or JSON/,
  });
});

Deno.test("a patch file is read as YAML or JSON, and a bad one names the file and the problem", () => {
  assert.deepEqual(parseTemplatePatch("spec:\n  hostNetwork: true\n", "p.yaml"), {
    spec: { hostNetwork: true },
  });
  assert.deepEqual(parseTemplatePatch('{"spec": {"hostNetwork": true}}', "p.json"), {
    spec: { hostNetwork: true },
  });
  assert.throws(() => parseTemplatePatch("spec: [1,\n", "bad.yaml"), {
    name: "TypeError",
    message: /^Cannot read the pod template patch 'bad\.yaml': it is not valid YAML or JSON \(/,
  });
  assert.throws(() => parseTemplatePatch("a: 1\n---\nb: 2\n", "two.yaml"), {
    message:
      "Cannot read the pod template patch 'two.yaml': it holds 2 documents; give exactly one, e.g. spec: {hostNetwork: true}",
  });
  assert.throws(() => parseTemplatePatch("- 1\n", "list.yaml"), {
    message: /'list\.yaml': it is not a mapping/,
  });
  assert.throws(() => parseTemplatePatch("hostNetwork: true\n", "flat.yaml"), {
    message:
      "Cannot use the pod template patch 'flat.yaml': 'hostNetwork' is not a field of a pod template; patch metadata or spec, e.g. {spec: {hostNetwork: true}}",
  });
});

Deno.test("kubeface map with a malformed --pod-template-patch exits 2 naming the file", async () => {
  const file = await Deno.makeTempFile({ suffix: ".yaml" });
  try {
    await Deno.writeTextFile(file, "spec:\n  volumes:\n  - secret: {}\n");
    const run = await kubeface([
      "run",
      "-e",
      "value",
      "-i",
      "[1]",
      "--backend",
      "kubernetes",
      "--pod-template-patch",
      file,
    ]);
    assert.equal(run.code, 2, run.stderr);
    assert.match(
      run.stderr,
      new RegExp(
        `Cannot use the pod template patch '${file}': spec\\.volumes\\[0\\] has no 'name', which spec\\.volumes is merged by; add it`,
      ),
    );
    const missing = await kubeface([
      "run",
      "-e",
      "value",
      "-i",
      "[1]",
      "--pod-template-patch",
      "/nope.yaml",
    ]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /Cannot read the pod template patch '\/nope\.yaml': no such file/);
  } finally {
    await Deno.remove(file);
  }
});
