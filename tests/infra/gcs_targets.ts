/**
 * The GCS emulators tests cross-check against, each behind a fault proxy:
 * fake-gcs-server (Go, built from the module proxy) and gcp-storage-emulator
 * (Python, from PyPI). `emulatorTests` registers one test per emulator that
 * can run here; one that cannot is skipped with a printed reason, or fails
 * under `CI=true`.
 *
 * @module
 */
// deno-lint-ignore-file no-console

import { ensureEmulatorBinary, startEmulator } from "./gcs_emulator.ts";
import { ensureGcpStorageEmulator, startGcpStorageEmulator } from "./gcp_storage_emulator.ts";
import type { Emulator } from "./emulator_process.ts";
import { type FaultyProxy, startFaultyProxy } from "./faulty_proxy.ts";

/** Which emulator. */
export type EmulatorKind = "fake-gcs-server" | "gcp-storage-emulator";

/** An emulator with a bucket and a fault proxy in front of it. */
export interface ProxiedEmulator extends AsyncDisposable {
  kind: EmulatorKind;
  emulator: Emulator;
  proxy: FaultyProxy;
  /** The bucket made for the test. */
  bucket: string;
}

const inCi = Deno.env.get("CI") === "true";

const setups: Record<
  EmulatorKind,
  { ensure: () => Promise<unknown>; start: () => Promise<Emulator> }
> = {
  "fake-gcs-server": { ensure: ensureEmulatorBinary, start: () => startEmulator() },
  "gcp-storage-emulator": { ensure: ensureGcpStorageEmulator, start: startGcpStorageEmulator },
};

const problems = new Map<EmulatorKind, Promise<string | undefined>>();

/** Why an emulator cannot run here (built or installed on first call), or `undefined`. */
export function emulatorProblem(kind: EmulatorKind): Promise<string | undefined> {
  let problem = problems.get(kind);
  if (!problem) {
    const selected = Deno.env.get("KUBEFACE_TEST_STORAGES")?.split(",").map((s) => s.trim());
    problem = selected && !selected.includes("gcs")
      ? Promise.resolve("KUBEFACE_TEST_STORAGES does not include gcs")
      : setups[kind].ensure().then(() => undefined, (error: Error) => error.message);
    problems.set(kind, problem);
  }
  return problem;
}

let buckets = 0;

/** Start an emulator with a fresh bucket, and a proxy in front of it. */
export async function proxiedEmulator(kind: EmulatorKind): Promise<ProxiedEmulator> {
  const emulator = await setups[kind].start();
  const bucket = `kf-test-${++buckets}`;
  try {
    await emulator.createBucket(bucket);
  } catch (error) {
    await emulator[Symbol.asyncDispose]();
    throw error;
  }
  const proxy = startFaultyProxy({ upstream: emulator.url });
  return {
    kind,
    emulator,
    proxy,
    bucket,
    async [Symbol.asyncDispose]() {
      await proxy[Symbol.asyncDispose]();
      await emulator[Symbol.asyncDispose]();
    },
  };
}

/**
 * Register `Deno.test("NAME (KIND)")` for each emulator kind given, each with
 * its own emulator and proxy. Without the emulator the test is ignored with
 * a printed reason, or fails when `CI=true`.
 */
export async function emulatorTests(
  name: string,
  kinds: readonly EmulatorKind[],
  fn: (env: ProxiedEmulator, t: Deno.TestContext) => Promise<void>,
): Promise<void> {
  for (const kind of kinds) {
    const problem = await emulatorProblem(kind);
    if (problem && !inCi) console.log(`skipping '${name}' on ${kind}: ${problem}`);
    Deno.test({
      name: `${name} (${kind})`,
      ignore: problem !== undefined && !inCi,
      async fn(t) {
        if (problem) throw new Error(`CI=true but ${kind} is unavailable: ${problem}`);
        await using env = await proxiedEmulator(kind);
        await fn(env, t);
      },
    });
  }
}

/** Both emulators. */
export const BOTH: readonly EmulatorKind[] = ["fake-gcs-server", "gcp-storage-emulator"];
