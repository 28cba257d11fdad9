// deno-lint-ignore-file no-console
/**
 * Running kubeface jobs for benchmarks: the master is bench/drivers/map_driver.ts
 * in its own process (so its wall time, CPU and peak memory are measured
 * cleanly), against this checkout or an older revision extracted with
 * `git archive`.
 *
 * @module
 */

import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { MapReport, MapSpec } from "../drivers/map_driver.ts";
import { benchCacheDir } from "./alternatives.ts";
import { lastJson, measure, type Measured, run } from "./process.ts";

/** This checkout's root directory. */
export const REPO = fileURLToPath(new URL("../../", import.meta.url)).replace(/\/$/, "");
const DRIVER = join(REPO, "bench", "drivers", "map_driver.ts");

/** Path of a module in bench/modules/. */
export function benchModule(name: string): string {
  return join(REPO, "bench", "modules", name);
}

/** Whether the local backend of the checkout at `root` has the warm-worker mode (`local.warm`). */
export function hasWarmMode(root: string = REPO): boolean {
  try {
    return /^\s*warm\?:\s*boolean/m.test(
      Deno.readTextFileSync(join(root, "lib/backends/local.ts")),
    );
  } catch {
    return false;
  }
}

/** Whether the checkout at `root` has a Kubernetes backend. */
export function hasKubernetesBackend(root: string = REPO): boolean {
  try {
    Deno.statSync(join(root, "lib/backends/kubernetes/kubernetes.ts"));
    return true;
  } catch {
    return false;
  }
}

/** A measured run of the driver. */
export interface DriverRun {
  measured: Measured;
  report: MapReport;
}

/**
 * Run one job with the driver. The spec's storage is used as given (the
 * caller creates and removes it).
 *
 * @throws {Error} The driver failed; the message has its output.
 */
export async function runDriver(
  spec: MapSpec,
  options: { env?: Record<string, string> } = {},
): Promise<DriverRun> {
  const root = spec.root ?? REPO;
  const measured = await measure(Deno.execPath(), [
    "run",
    "-A",
    `--config=${join(root, "deno.json")}`,
    DRIVER,
    JSON.stringify(spec),
  ], { cwd: root, env: options.env });
  const report = lastJson<MapReport>(measured, `the kubeface driver (${spec.module})`);
  return { measured, report };
}

/** Run `fn` with a new temporary storage directory, removed afterwards. */
export async function withTempStorage<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "kubeface-bench-" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/**
 * Extract revision `rev` of this repository (with `git archive`) into the
 * benchmark cache, once, and return its directory.
 *
 * @throws {Error} The revision is unknown to git.
 */
export async function checkoutRevision(rev: string): Promise<{ root: string; sha: string }> {
  const sha = (await run("git", ["rev-parse", "--short", `${rev}^{commit}`], {
    cwd: REPO,
    what: `resolve git revision '${rev}'`,
  })).trim();
  const root = join(benchCacheDir(), "revisions", sha);
  try {
    await Deno.stat(join(root, "mod.ts"));
    return { root, sha };
  } catch { /* extract it */ }
  console.error(`bench: extracting revision ${sha} into ${root}`);
  const temp = `${root}.tmp-${Deno.pid}`;
  await Deno.mkdir(temp, { recursive: true });
  await run("bash", ["-c", `git archive ${sha} | tar -x -C '${temp}'`], {
    cwd: REPO,
    what: `extract revision ${sha}`,
  });
  await Deno.rename(temp, root);
  return { root, sha };
}
