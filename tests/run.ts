// deno-lint-ignore-file no-console
/**
 * The test command (`deno task test`): builds and starts the real services
 * the suites need, runs `deno test` with every storage and backend it could
 * provide, and stops the services again.
 *
 * ```sh
 * deno task test                      # everything
 * deno task test -- --filter "map()"  # extra arguments go to deno test
 * ```
 *
 * - GCS: fake-gcs-server, built with `go install` at a pinned version
 *   (tests start their own instances on free ports).
 * - Kubernetes: etcd, kube-apiserver, kube-controller-manager and
 *   kube-scheduler built from the Go module proxy, and a node agent
 *   (`tests/infra/cluster/`), unless `KUBEFACE_TEST_KUBECONFIG` names a
 *   running one.
 * - Containers: the worker image of these sources, built with podman or
 *   docker (`deno task image:build`; skipped when it exists). Without
 *   either, the container backend is left out, or with `CI=true` it fails.
 *
 * Set `KUBEFACE_TEST_STORAGES` / `KUBEFACE_TEST_BACKENDS` to narrow the
 * matrix.
 *
 * @module
 */

import { down, KUBECONFIG_ENV, up } from "./infra/cluster/cluster.ts";
import { ensureEmulatorBinary } from "./infra/gcs_emulator.ts";
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
storages.push("gcs");

try {
  const built = await step("building the worker image", () => buildImage());
  console.log(`test setup: container backend with ${built.image}`);
  backends.push("container");
} catch (error) {
  if (Deno.env.get("CI") === "true") throw error;
  console.log(`test setup: no container backend: ${errorMessage(error)}`);
}

// The Kubernetes control plane: one for the whole run (built on first use, ~6 min cold).
let cluster: Awaited<ReturnType<typeof up>> | undefined;
if (Deno.env.get(KUBECONFIG_ENV)) {
  backends.push("kubernetes");
} else {
  try {
    cluster = await step(
      "starting the Kubernetes test cluster",
      () =>
        up({
          dir: Deno.makeTempDirSync({ prefix: "kubeface-test-cluster-" }),
          onProgress: (line) => console.log(`  ${line}`),
        }),
    );
    env[KUBECONFIG_ENV] = cluster.adminKubeconfig;
    backends.push("kubernetes");
  } catch (error) {
    if (Deno.env.get("CI") === "true") throw error;
    console.log(`test setup: no Kubernetes backend: ${errorMessage(error)}`);
  }
}

env.KUBEFACE_TEST_STORAGES ??= Deno.env.get("KUBEFACE_TEST_STORAGES") ?? storages.join(",");
env.KUBEFACE_TEST_BACKENDS ??= Deno.env.get("KUBEFACE_TEST_BACKENDS") ?? backends.join(",");
console.log(
  `test setup: storages ${env.KUBEFACE_TEST_STORAGES}; backends ${env.KUBEFACE_TEST_BACKENDS}`,
);

const args = Deno.args[0] === "--" ? Deno.args.slice(1) : Deno.args;
const status = await new Deno.Command(Deno.execPath(), {
  args: [
    "test",
    "--allow-run",
    "--allow-read",
    "--allow-write",
    "--allow-env",
    "--allow-net",
    "--allow-sys",
    "--v8-flags=--expose-gc", // memory tests measure live memory
    "--parallel",
    ...args,
    "--doc",
    "tests/",
    "mod.ts",
  ],
  env,
  stdin: "null",
}).spawn().status;
if (cluster && !cluster.reused) await down({ dir: cluster.dir });
Deno.exit(status.code);
