/**
 * Reading what workers recorded: the headers of a job's result objects
 * (start and end times, host, RSS), straight from storage.
 *
 * @module
 */

import { JobLayout } from "../../lib/job/layout.ts";
import type { ResultHeader } from "../../lib/job/manifest.ts";
import { readHeader } from "../../lib/serialize.ts";
import { openStorage } from "../../lib/storage/storage.ts";

/** Headers of every result object of a job (successful or not). */
export async function resultHeaders(storageUrl: string, job: string): Promise<ResultHeader[]> {
  await using storage = await openStorage(storageUrl);
  const layout = new JobLayout(job);
  const headers: ResultHeader[] = [];
  for await (const { key } of storage.list(layout.resultsPrefix)) {
    headers.push(await readHeader<ResultHeader>(await storage.get(key), key));
  }
  return headers;
}
