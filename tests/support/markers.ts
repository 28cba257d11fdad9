/**
 * The test's side of the fixtures' markers (`tests/fixtures/markers.ts`):
 * a place both the test and the task can reach, the options that let the
 * task reach it, and reading and leaving markers. With local storage,
 * local processes and containers share a temporary directory with the
 * test; with GCS storage (always, for Kubernetes pods, which may run on
 * another machine), markers are objects in the test's bucket, reached at
 * the emulator the worker's storage uses.
 *
 * @module
 */

import { openStorage, type Storage } from "../../lib/storage/storage.ts";
import type { MapOptions } from "../../mod.ts";
import type { Target } from "./targets.ts";

/** Markers of one test. */
export interface Markers {
  /** Options that let a task leave and read markers. */
  options: Required<Pick<MapOptions, "env" | "permissions">>;
  /** Names of the markers that start with `prefix`, sorted. */
  names(prefix?: string): Promise<string[]>;
  /** The text of a marker, or `undefined`. */
  read(name: string): Promise<string | undefined>;
  /** Leave a marker for the task. */
  mark(name: string, text?: string): Promise<void>;
}

function dirMarkers(dir: string): Markers {
  return {
    options: {
      env: { MARKER_DIR: dir },
      permissions: [
        "--allow-env=MARKER_DIR,MARKER_GCS",
        `--allow-read=${dir}`,
        `--allow-write=${dir}`,
      ],
    },
    async names(prefix = "") {
      const out: string[] = [];
      for await (const entry of Deno.readDir(dir)) {
        if (entry.name.startsWith(prefix) && !entry.name.startsWith(".")) out.push(entry.name);
      }
      return out.sort();
    },
    read: (name) => Deno.readTextFile(`${dir}/${name}`).catch(() => undefined),
    mark: (name, text = "") => Deno.writeTextFile(`${dir}/${name}`, text),
  };
}

function gcsMarkers(storage: Storage, bucket: string, prefix: string): Markers {
  if (!Deno.env.get("STORAGE_EMULATOR_HOST")) {
    throw new Error("GCS markers need STORAGE_EMULATOR_HOST (the emulator)");
  }
  return {
    options: {
      // No host: the task uses the emulator its worker's storage uses, wherever the pod runs.
      env: { MARKER_GCS: `|${bucket}|${prefix}` },
      permissions: ["--allow-env=MARKER_DIR,MARKER_GCS,STORAGE_EMULATOR_HOST", "--allow-net"],
    },
    async names(start = "") {
      const out: string[] = [];
      for await (const { key } of storage.list(start)) out.push(key);
      return out.sort();
    },
    async read(name) {
      if (!(await storage.stat(name))) return undefined;
      return await new Response(await storage.get(name)).text();
    },
    async mark(name, text = "") {
      await storage.put(name, new TextEncoder().encode(text));
    },
  };
}

/**
 * Run `fn` with markers for `target`: a temporary directory with local
 * storage, or a prefix `markers-<random>/` in the test's GCS bucket.
 */
export async function withMarkersFor<T>(
  target: Target,
  storageUrl: string,
  fn: (markers: Markers) => Promise<T>,
): Promise<T> {
  if (!storageUrl.startsWith("gs://")) {
    if (target.backend === "kubernetes") throw new Error("Kubernetes markers need gs:// storage");
    const dir = await Deno.makeTempDir({ prefix: "kubeface-markers-" });
    try {
      return await fn(dirMarkers(dir));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
  const match = /^gs:\/\/([^/]+)\//.exec(storageUrl);
  if (!match) throw new Error(`Cannot find the bucket of ${storageUrl}`);
  const prefix = `markers-${crypto.randomUUID().slice(0, 8)}/`;
  await using storage = await openStorage(`gs://${match[1]}/${prefix}`);
  return await fn(gcsMarkers(storage, match[1]!, prefix));
}
