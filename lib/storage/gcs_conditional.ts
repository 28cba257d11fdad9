/**
 * Writes and deletes that are safe to retry because every request carries a
 * precondition, as the GCS retry strategy asks of object inserts and deletes
 * (https://cloud.google.com/storage/docs/retry-strategy): `ifGenerationMatch`
 * names the generation the request means to replace or remove (0: none), so
 * an attempt repeated after its answer was lost cannot undo a later write.
 *
 * @module
 */

import type { Bucket } from "@google-cloud/storage";
import { createHash } from "node:crypto";
import type { Generations } from "./gcs_generations.ts";
import { httpStatusOf } from "./retry.ts";

/** Custom metadata key holding the id of the put that wrote an object. */
export const WRITER_KEY = "kubeface-writer";

/** What the conditional operations need from a storage. */
export interface Conditional {
  bucket: Bucket;
  /** Generations last seen, used as preconditions. */
  generations: Generations;
  /** Retry a single request on transient errors. */
  retry<T>(fn: () => Promise<T>): Promise<T>;
  /** Rounds of looking up and trying again after 412s. */
  maxAttempts: number;
}

/** The live generation and writer id of an object, or `undefined` if there is none. */
export async function liveObject(
  c: Conditional,
  name: string,
): Promise<{ generation: string; writer?: string } | undefined> {
  const file = c.bucket.file(name);
  try {
    const [metadata] = await c.retry(() => file.getMetadata());
    const generation = String(metadata.generation);
    c.generations.set(name, generation);
    return { generation, writer: metadata.metadata?.[WRITER_KEY] as string | undefined };
  } catch (error) {
    if (httpStatusOf(error) !== 404) throw error;
    c.generations.set(name, undefined);
    return undefined;
  }
}

/**
 * A single-request write. Every attempt carries `ifGenerationMatch`: 0 for a
 * new object (always with `ifAbsent`), else the generation last seen. On 412
 * the object is looked at: written by this put (an attempt whose answer was
 * lost) means done; otherwise `ifAbsent` gives up (`false`) and an overwrite
 * tries again with the generation now live.
 *
 * @returns `false` only when `ifAbsent` found another writer's object.
 */
export async function putOnce(
  c: Conditional,
  name: string,
  bytes: Uint8Array,
  options: { ifAbsent: boolean; contentType: string; writer: string },
): Promise<boolean> {
  const { ifAbsent, contentType, writer } = options;
  const md5Hash = createHash("md5").update(bytes).digest("base64");
  const file = c.bucket.file(name);
  let generation = ifAbsent ? "0" : c.generations.get(name) ?? "0";
  for (let round = 1;; round++) {
    try {
      await c.retry(() =>
        file.save(bytes, {
          contentType,
          resumable: false,
          validation: false, // the server checks the MD5 declared here
          metadata: { contentType, md5Hash, metadata: { [WRITER_KEY]: writer } },
          preconditionOpts: { ifGenerationMatch: Number(generation) },
        })
      );
      c.generations.set(name, file.metadata.generation);
      return true;
    } catch (error) {
      if (httpStatusOf(error) !== 412) throw error;
      const live = await liveObject(c, name);
      if (live?.writer === writer) return true;
      if (ifAbsent) return false;
      if (round >= c.maxAttempts) throw error;
      generation = live?.generation ?? "0";
    }
  }
}

/**
 * Delete with `ifGenerationMatch`, so that a retried delete never removes an
 * object written after the one it meant. The generation is the one last seen
 * (a listing, a write) or looked up; a 412 on a generation looked up during
 * this call means the object was replaced meanwhile, and the newer one stays.
 * Deleting a missing object is not an error.
 */
export async function deleteLive(c: Conditional, name: string): Promise<void> {
  const file = c.bucket.file(name);
  let generation = c.generations.get(name);
  let looked = false;
  for (;;) {
    if (generation === undefined) {
      generation = (await liveObject(c, name))?.generation;
      if (generation === undefined) return;
      looked = true;
    }
    try {
      const ifGenerationMatch = Number(generation);
      await c.retry(() => file.delete({ ignoreNotFound: true, ifGenerationMatch }));
      c.generations.set(name, undefined);
      return;
    } catch (error) {
      if (httpStatusOf(error) !== 412) throw error;
      if (looked) return;
      generation = undefined; // a stale hint: look the object up
    }
  }
}
