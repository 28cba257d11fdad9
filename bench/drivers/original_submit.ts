// deno-lint-ignore-file no-console
/**
 * The original kubeface's way of submitting, as a baseline: for each task,
 * one upload of its input to the bucket and one `kubectl create` of a bare
 * pod, one after another. The pods carry a scheduling gate so none runs.
 * Prints one JSON line ({@linkcode OriginalReport}).
 *
 * ```sh
 * STORAGE_EMULATOR_HOST=… deno run -A bench/drivers/original_submit.ts '{"count": 200, …}'
 * ```
 *
 * @module
 */

/** What to submit. */
export interface OriginalSpec {
  count: number;
  /** Bucket on the emulator named by STORAGE_EMULATOR_HOST. */
  bucket: string;
  namespace: string;
  kubeconfig: string;
  kubectl: string;
  /** kubectl's discovery cache directory. */
  cacheDir: string;
}

/** Totals in milliseconds, and the API calls kubectl reported making (`-v=6`). */
export interface OriginalReport {
  uploadMs: number;
  kubectlMs: number;
  apiCalls: number;
  created: number;
}

function pod(spec: OriginalSpec, task: number): string {
  return JSON.stringify({
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: `kf-original-${task}`,
      namespace: spec.namespace,
      labels: { "app.kubernetes.io/name": "kubeface-bench", "kubeface.dev/task": String(task) },
    },
    spec: {
      schedulingGates: [{ name: "kubeface.dev/bench-hold" }],
      restartPolicy: "Never",
      containers: [{
        name: "task",
        image: "denoland/deno:2.9.6",
        command: ["deno", "run", "-A", "/app/worker.ts"],
        args: ["--storage", `gs://${spec.bucket}/`, "--job", "original", "--task", String(task)],
        resources: { requests: { cpu: "1", memory: "1Gi" } },
      }],
    },
  });
}

async function main(spec: OriginalSpec): Promise<OriginalReport> {
  const { Storage } = await import("@google-cloud/storage");
  const host = Deno.env.get("STORAGE_EMULATOR_HOST") ?? "";
  const endpoint = new URL(/^https?:\/\//.test(host) ? host : `http://${host}`).origin;
  const client = new Storage({ apiEndpoint: endpoint, projectId: "kubeface-bench" });
  (client as unknown as { baseUrl: string }).baseUrl = `${endpoint}/storage/v1`;
  const bucket = client.bucket(spec.bucket);
  const report: OriginalReport = { uploadMs: 0, kubectlMs: 0, apiCalls: 0, created: 0 };
  for (let task = 0; task < spec.count; task++) {
    let t = performance.now();
    await bucket.file(`original/inputs/${task}`).save(
      new TextEncoder().encode(JSON.stringify({ task, input: task })),
      { resumable: false },
    );
    report.uploadMs += performance.now() - t;
    t = performance.now();
    const child = new Deno.Command(spec.kubectl, {
      args: [
        `--kubeconfig=${spec.kubeconfig}`,
        `--cache-dir=${spec.cacheDir}`,
        "-v=6",
        "create",
        "-f",
        "-",
      ],
      stdin: "piped",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(pod(spec, task)));
    await writer.close();
    const [status, stderr] = await Promise.all([child.status, new Response(child.stderr).text()]);
    report.kubectlMs += performance.now() - t;
    if (!status.success) throw new Error(`kubectl create failed for task ${task}:\n${stderr}`);
    report.apiCalls += stderr.split("\n").filter((line) => /"Response" verb="/.test(line)).length;
    report.created++;
  }
  return report;
}

if (import.meta.main) {
  console.log(JSON.stringify(await main(JSON.parse(Deno.args[0] ?? "{}") as OriginalSpec)));
  Deno.exit(0);
}
