// deno-lint-ignore-file no-console
/**
 * The master side of a submission benchmark: prepares a job (bundle, every
 * input uploaded, manifest) and submits all its tasks to a backend, then
 * stops the job without waiting for any task. Prints one JSON line
 * ({@linkcode SubmitReport}).
 *
 * `backend: "null"` accepts the tasks without running anything, which
 * times kubeface's own side of submission (storage); a backend name wraps
 * that real backend, timing its `open` and `submit`.
 *
 * ```sh
 * STORAGE_EMULATOR_HOST=… deno run -A bench/drivers/submit_driver.ts '{"count": 10000, "storage": "gs://b/r/", "backend": "null"}'
 * ```
 *
 * @module
 */

import { CountingKubeConfig } from "../../tests/support/kubeconfig.ts";
import { KubernetesBackend } from "../../lib/backends/kubernetes/kubernetes.ts";
import type {
  Backend,
  BackendSession,
  ClientOptions,
  KubernetesBackendOptions,
} from "../../mod.ts";
import { Client } from "../../mod.ts";

/** What to submit. */
export interface SubmitSpec {
  /** Absolute path of the task module. */
  module: string;
  /** Number of tasks (inputs 0 … count-1). */
  count: number;
  /** Storage root URL. */
  storage: string;
  /** `"null"`, or a backend name. */
  backend: string;
  /** Extra client options for a real backend (e.g. `{"kubernetes": {…}}`). */
  clientOptions?: Record<string, unknown>;
  /** Most tasks at once, as the job would ask the backend. @default {16} */
  parallelism?: number;
}

/** Times in milliseconds since the process started. */
export interface SubmitReport {
  /** When the job was prepared: module bundled, every input uploaded, manifest written. */
  readyMs: number;
  /** How long the backend's `open` took. */
  openMs: number;
  /** How long the backend's `submit` took, summed over calls. */
  submitMs: number;
  /** When every task had been submitted. */
  submittedMs: number;
  /** Tasks submitted. */
  submitted: number;
  /** Calls of `submit`. */
  submitCalls: number;
  /** Kubernetes API requests the backend made (lists, creates, watches), when it is Kubernetes. */
  apiCalls?: number;
}

/** A backend that accepts attempts and never runs them. */
function nullBackend(): Backend {
  return {
    name: "null",
    open: () =>
      Promise.resolve({
        submit: () => Promise.resolve(),
        cancel: () => Promise.resolve(),
        close: () => Promise.resolve(),
        [Symbol.asyncDispose]: () => Promise.resolve(),
      }),
    cleanup: () => Promise.resolve([]),
  };
}

let counter: CountingKubeConfig | undefined;

async function main(spec: SubmitSpec): Promise<SubmitReport> {
  const report: SubmitReport = {
    readyMs: NaN,
    openMs: 0,
    submitMs: 0,
    submittedMs: NaN,
    submitted: 0,
    submitCalls: 0,
  };
  let allSubmitted!: () => void;
  const done = new Promise<void>((resolve) => (allSubmitted = resolve));
  const options = { ...spec.clientOptions, storage: spec.storage } as ClientOptions;
  let inner: Backend;
  if (spec.backend === "null") inner = nullBackend();
  else if (spec.backend === "kubernetes") {
    const kubeConfig = new CountingKubeConfig();
    const k = (options.kubernetes ?? {}) as KubernetesBackendOptions;
    if (k.kubeconfig) kubeConfig.loadFromFile(k.kubeconfig);
    else kubeConfig.loadFromDefault();
    counter = kubeConfig;
    inner = new KubernetesBackend(k, kubeConfig);
  } else inner = await new Client({ ...options, backend: spec.backend as "local" }).backend();
  const timed: Backend = {
    name: inner.name,
    cleanup: (key) => inner.cleanup(key),
    async open(job, onEvent) {
      const started = performance.now();
      const session = await inner.open(job, onEvent);
      report.openMs += performance.now() - started;
      const wrapped: BackendSession = {
        async submit(attempts) {
          const t = performance.now();
          await session.submit(attempts);
          report.submitMs += performance.now() - t;
          report.submitCalls++;
          report.submitted += attempts.length;
          if (report.submitted >= spec.count) {
            report.submittedMs = performance.now();
            allSubmitted();
          }
        },
        cancel: (ids) => session.cancel(ids),
        close: (o) => session.close(o),
        [Symbol.asyncDispose]: () => session[Symbol.asyncDispose](),
      };
      return wrapped;
    },
  };
  const run = new Client({ ...options, backend: timed }).map(spec.module, {
    inputs: Array.from({ length: spec.count }, (_, i) => i),
    parallelism: spec.parallelism ?? 16,
    onStart: () => (report.readyMs = performance.now()),
  });
  const iterator = run[Symbol.asyncIterator]();
  const first = iterator.next().catch(() => undefined);
  await done;
  // API calls up to the submission (2 watches are not API client calls: add them).
  if (counter) report.apiCalls = counter.calls.length + 2;
  await run.cancel({ stopRunning: true });
  await first;
  await iterator.return?.(undefined);
  return report;
}

if (import.meta.main) {
  console.log(JSON.stringify(await main(JSON.parse(Deno.args[0] ?? "{}") as SubmitSpec)));
  Deno.exit(0); // client libraries may keep sockets open
}
