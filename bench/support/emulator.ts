/**
 * The GCS emulator for benchmarks: the tests' fake-gcs-server helper, with
 * the filesystem backend so large objects do not sit in its memory.
 *
 * @module
 */

import { type Emulator, startEmulator } from "../../tests/infra/gcs_emulator.ts";

/** A started emulator, or why none could start. */
export type EmulatorOrReason = { ok: true; emulator: Emulator } | { ok: false; reason: string };

/** Start the emulator (building it first if needed, about a minute). */
export async function benchEmulator(): Promise<EmulatorOrReason> {
  try {
    return { ok: true, emulator: await startEmulator({ backend: "filesystem" }) };
  } catch (error) {
    return { ok: false, reason: `the GCS emulator could not start: ${(error as Error).message}` };
  }
}

let buckets = 0;

/** Create a new bucket on the emulator and return its name. */
export async function newBucket(emulator: Emulator, prefix: string): Promise<string> {
  const name = `${prefix}-${Deno.pid}-${++buckets}`;
  await emulator.createBucket(name);
  return name;
}
