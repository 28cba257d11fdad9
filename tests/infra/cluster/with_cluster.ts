// deno-lint-ignore-file no-console
/**
 * Start the test cluster, run one command with `KUBEFACE_TEST_KUBECONFIG` set, stop the
 * cluster, and exit with the command's exit code. A cluster already running in DIR is used and
 * left running. Meant for `.ci/run`:
 *
 * ```sh
 * deno run -A tests/infra/cluster/with_cluster.ts -- deno task test
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { KUBECONFIG_ENV } from "./cluster.ts";
import { down } from "./down.ts";
import { up } from "./up.ts";
import { defaultRunDir } from "./versions.ts";

const { values, positionals } = parseArgs({
  options: { dir: { type: "string" }, "keep-running": { type: "boolean", default: false } },
  allowPositionals: true,
});
const [program, ...args] = positionals;
if (!program) {
  console.error("Usage: with_cluster.ts [--dir DIR] [--keep-running] -- COMMAND [ARGS...]");
  Deno.exit(2);
}
const dir = values.dir ?? defaultRunDir();
const progress = (line: string) => console.error(`[cluster] ${line}`);
let code = 1;
let started = false;
try {
  const cluster = await up({ dir, onProgress: progress });
  started = !cluster.reused;
  console.error(`[cluster] ${KUBECONFIG_ENV}=${cluster.adminKubeconfig}`);
  const child = new Deno.Command(program, {
    args,
    env: { [KUBECONFIG_ENV]: cluster.adminKubeconfig },
    stdin: "inherit",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  code = (await child.status).code;
} finally {
  // A cluster that was already running in DIR is left as it was.
  if (started && !values["keep-running"]) await down({ dir, onProgress: progress });
}
Deno.exit(code);
