/**
 * Helpers shared by job tests: collect results, read what workers stored.
 *
 * @module
 */

import { JobLayout } from "../../lib/format/layout.ts";
import type { ResultHeader } from "../../lib/format/manifest.ts";
import { readHeader } from "../../lib/format/records.ts";
import { openStorage } from "../../lib/storage/storage.ts";
import type { MapOptions, MapRun } from "../../mod.ts";

/** Path of a fixture module. */
export function fixture(name: string): string {
  return new URL(`../fixtures/${name}`, import.meta.url).pathname;
}

/** Path of an example module. */
export function example(name: string): string {
  return new URL(`../../examples/${name}`, import.meta.url).pathname;
}

/** Every value of a run, in order. */
export async function collect<O>(run: AsyncIterable<O>): Promise<O[]> {
  const out: O[] = [];
  for await (const value of run) out.push(value);
  return out;
}

/** Run to the end and return the error it threw (fails if it threw none). */
export async function failure(run: MapRun): Promise<unknown> {
  try {
    for await (const _ of run) { /* drain */ }
  } catch (error) {
    return error;
  }
  throw new Error("expected the job to fail, but it succeeded");
}

/** Headers of every result object of a job, as the workers wrote them. */
export async function resultHeaders(storageUrl: string, job: string): Promise<ResultHeader[]> {
  await using storage = await openStorage(storageUrl);
  const layout = new JobLayout(job);
  const headers: ResultHeader[] = [];
  for await (const { key } of storage.list(layout.resultsPrefix)) {
    headers.push(await readHeader<ResultHeader>(await storage.get(key), key));
  }
  return headers;
}

/** Keys of every object under a storage root. */
export async function storedKeys(storageUrl: string, prefix = ""): Promise<string[]> {
  await using storage = await openStorage(storageUrl);
  const keys: string[] = [];
  for await (const { key } of storage.list(prefix)) keys.push(key);
  return keys.sort();
}

/** The largest number of intervals that overlap at one instant. */
export function maxOverlap(intervals: { start: number; end: number }[]): number {
  const points = intervals.flatMap((i) => [
    { at: i.start, delta: 1 },
    { at: i.end, delta: -1 },
  ]).sort((a, b) => a.at - b.at || a.delta - b.delta);
  let current = 0;
  let best = 0;
  for (const p of points) {
    current += p.delta;
    best = Math.max(best, current);
  }
  return best;
}

/** Poll `check` until it returns a value, or fail after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Where marker directories are made. Pods of the test cluster see it at the
 * same path (a hostPath volume, see `testPodPatch` in targets.ts).
 */
export const MARKER_ROOT = `${Deno.env.get("TMPDIR") ?? "/tmp"}/kubeface-markers`;

/**
 * Run `fn` with a temporary marker directory that tasks may use to signal
 * tests, and the options that give tasks access to it (`MARKER_DIR`). Any
 * user may write it: pods run as uid 1993.
 */
export async function withMarkers<T>(
  fn: (dir: string, options: Pick<MapOptions, "env" | "permissions">) => Promise<T>,
): Promise<T> {
  await Deno.mkdir(MARKER_ROOT, { recursive: true });
  const dir = await Deno.makeTempDir({ dir: MARKER_ROOT, prefix: "markers-" });
  await Deno.chmod(dir, 0o777);
  try {
    return await fn(dir, {
      env: { MARKER_DIR: dir },
      permissions: ["--allow-env=MARKER_DIR", `--allow-read=${dir}`, `--allow-write=${dir}`],
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
