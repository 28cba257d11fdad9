// deno-lint-ignore-file no-console
/**
 * The test command (`deno task test`): builds and starts the real services
 * the suites need, runs `deno test` with every storage and backend it could
 * provide, and stops the services again.
 *
 * ```sh
 * deno task test                         # everything
 * deno task test -- --filter "map()"     # extra arguments go to deno test
 * deno task test -- tests/map_test.ts    # only these files
 * ```
 *
 * - GCS: fake-gcs-server, built with `go install` at a pinned version, and
 *   gcp-storage-emulator, installed with pip into a cached virtual
 *   environment at a pinned version, to cross-check resumable uploads
 *   (tests start their own instances on free ports).
 * - Kubernetes: etcd, kube-apiserver, kube-controller-manager and
 *   kube-scheduler built from the Go module proxy, and a real node
 *   (containerd and the kubelet; `tests/infra/cluster/`), unless
 *   `KUBEFACE_TEST_KUBECONFIG` names a running one. The Kubernetes suites
 *   run twice: pods of the stock Deno image (`kubernetes`) and of the worker
 *   image (`kubernetes-image`, imported into the node), and the tests chosen
 *   for it once more on warm pods (`kubernetes-warm`). Where the node
 *   cannot run (no root, no cgroups, …) the reason is printed, or with
 *   `CI=true` the run fails.
 * - Containers: the worker image of these sources, built with podman or
 *   docker (`deno task image:build`; skipped when it exists). Without
 *   either, the container backend is left out, or with `CI=true` it fails.
 *
 * Set `KUBEFACE_TEST_STORAGES` / `KUBEFACE_TEST_BACKENDS` to narrow the
 * matrix.
 *
 * @module
 */

import { down, importImages, KUBECONFIG_ENV, up } from "./infra/cluster/cluster.ts";
import { ensureEmulatorBinary } from "./infra/gcs_emulator.ts";
import { ensureGcpStorageEmulator } from "./infra/gcp_storage_emulator.ts";
import { ensureKwok } from "./infra/cluster/kwok.ts";
import { buildImage } from "../lib/image/build.ts";
import { errorMessage } from "../lib/errors.ts";

const env: Record<string, string> = {};
const storages = ["local"];
const backends = ["local", "warm"];

async function step<T>(what: string, fn: () => Promise<T>): Promise<T> {
  const started = Date.now();
  console.log(`test setup: ${what}…`);
  const value = await fn();
  console.log(`test setup: ${what} done in ${((Date.now() - started) / 1000).toFixed(1)}s`);
  return value;
}

await step("building the GCS emulator", ensureEmulatorBinary);
try {
  await step("installing the second GCS emulator (gcp-storage-emulator)", ensureGcpStorageEmulator);
} catch (error) {
  if (Deno.env.get("CI") === "true") throw error;
  console.log(`test setup: no second GCS emulator (its tests skip): ${errorMessage(error)}`);
}
storages.push("gcs");

let workerImage: string | undefined;
try {
  const built = await step("building the worker image", () => buildImage());
  console.log(`test setup: container backend with ${built.image}`);
  backends.push("container");
  workerImage = built.image;
} catch (error) {
  if (Deno.env.get("CI") === "true") throw error;
  console.log(`test setup: no container backend: ${errorMessage(error)}`);
}

// The Kubernetes control plane: one for the whole run (built on first use, ~6 min cold).
let cluster: Awaited<ReturnType<typeof up>> | undefined;
const images = workerImage ? [workerImage] : [];
const given = Deno.env.get(KUBECONFIG_ENV);
try {
  if (given) {
    await step(
      "importing the worker image into the given test cluster",
      () => importImages(given.replace(/[^/]*$/, ""), images, (line) => console.log(`  ${line}`)),
    );
  } else {
    cluster = await step(
      "starting the Kubernetes test cluster",
      () =>
        up({
          dir: Deno.makeTempDirSync({ prefix: "kubeface-test-cluster-" }),
          images,
          onProgress: (line) => console.log(`  ${line}`),
        }),
    );
    env[KUBECONFIG_ENV] = cluster.adminKubeconfig;
  }
  // The KWOK pool's simulated kubelets (tests/kwok_test.ts, tests/width_test.ts); ~3 min cold.
  await step("building kwok", () => ensureKwok({ onProgress: (line) => console.log(`  ${line}`) }));
  backends.push("kubernetes", "kubernetes-warm");
  if (workerImage) backends.push("kubernetes-image");
} catch (error) {
  if (Deno.env.get("CI") === "true") throw error;
  console.log(`test setup: no Kubernetes backend: ${errorMessage(error)}`);
}

env.KUBEFACE_TEST_STORAGES ??= Deno.env.get("KUBEFACE_TEST_STORAGES") ?? storages.join(",");
env.KUBEFACE_TEST_BACKENDS ??= Deno.env.get("KUBEFACE_TEST_BACKENDS") ?? backends.join(",");
console.log(
  `test setup: storages ${env.KUBEFACE_TEST_STORAGES}; backends ${env.KUBEFACE_TEST_BACKENDS}`,
);

// One `deno test` process per file, two at a time: files then never share an
// environment (several set STORAGE_EMULATOR_HOST) and one file's crash stays its own.
const args = Deno.args[0] === "--" ? Deno.args.slice(1) : Deno.args;
const chosen = args.filter((a) => /(_test\.ts|^mod\.ts)$/.test(a));
const testArgs = args.filter((a) => !chosen.includes(a));
const files = chosen.length > 0 ? chosen : [
  ...[...Deno.readDirSync(new URL(".", import.meta.url))]
    .filter((e) => e.isFile && e.name.endsWith("_test.ts"))
    .map((e) => `tests/${e.name}`)
    .sort((a, b) => weight(b) - weight(a) || a.localeCompare(b)),
  "mod.ts",
];

/** Start the slowest files first, so the two slots finish close together. */
function weight(file: string): number {
  const slowest = [
    "width",
    "lifecycle",
    "map",
    "kubernetes",
    "long_tasks",
    "kwok",
    "container",
    "faults",
    "storage",
    "gcs_resumable",
    "cli",
  ];
  const rank = slowest.findIndex((name) => file.includes(`/${name}_`));
  return rank < 0 ? 0 : slowest.length - rank;
}

const PERMISSIONS = [
  "--allow-run",
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-net",
  "--allow-sys",
];

interface Outcome {
  file: string;
  code: number;
  passed: number;
  failed: number;
  seconds: number;
}

async function runFile(file: string): Promise<Outcome> {
  const started = Date.now();
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      "test",
      ...PERMISSIONS,
      "--v8-flags=--expose-gc", // memory tests measure live memory
      // The runnable examples of the public API's docs.
      ...(file === "mod.ts" ? ["--doc", "lib/"] : []),
      ...testArgs,
      file,
    ],
    env: { ...env, NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(output.stdout) + new TextDecoder().decode(output.stderr);
  const count = (what: string) =>
    Number([...text.matchAll(new RegExp(`(\\d+) ${what}`, "g"))].at(-1)?.[1] ?? 0);
  const outcome = {
    file,
    code: output.code,
    passed: count("passed"),
    failed: count("failed"),
    seconds: (Date.now() - started) / 1000,
  };
  console.log(
    `\n===== ${file}: exit ${outcome.code} in ${outcome.seconds.toFixed(0)}s =====\n${text}`,
  );
  return outcome;
}

const slots = Number(Deno.env.get("KUBEFACE_TEST_JOBS") ?? 2);
const queue = [...files];
const outcomes: Outcome[] = [];
await Promise.all(Array.from({ length: slots }, async () => {
  for (let file = queue.shift(); file; file = queue.shift()) outcomes.push(await runFile(file));
}));
if (cluster && !cluster.reused) await down({ dir: cluster.dir });

console.log("\n===== summary =====");
for (const o of outcomes) {
  console.log(
    `${o.code === 0 ? "ok    " : "FAILED"} ${o.file}: ${o.passed} passed, ${o.failed} failed (${
      o.seconds.toFixed(0)
    }s)`,
  );
}
const failed = outcomes.filter((o) => o.code !== 0);
console.log(
  `${failed.length === 0 ? "ok" : "FAILED"}: ${
    outcomes.reduce((n, o) => n + o.passed, 0)
  } passed, ${outcomes.reduce((n, o) => n + o.failed, 0)} failed in ${outcomes.length} files`,
);
Deno.exit(failed.length === 0 ? 0 : 1);
