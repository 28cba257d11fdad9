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
 *
 * Set `KUBEFACE_TEST_STORAGES` / `KUBEFACE_TEST_BACKENDS` to narrow the
 * matrix.
 *
 * @module
 */

import { ensureEmulatorBinary } from "./infra/gcs_emulator.ts";

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
    "--parallel",
    ...args,
    "--doc",
    "tests/",
    "mod.ts",
  ],
  env,
  stdin: "null",
}).spawn().status;
Deno.exit(status.code);
