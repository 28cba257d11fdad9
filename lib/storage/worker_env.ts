/**
 * What a worker elsewhere (a container, a pod) needs in its environment to
 * reach the same storage root as this process.
 *
 * @module
 */

import { readEnv } from "../env.ts";

/**
 * Variables that point a GCS client at its endpoint and project; passed on
 * to workers when set here. Credentials are not among them: a container
 * gets its credentials file mounted, a pod its identity from the cluster.
 */
export const GCS_WORKER_ENV = [
  "STORAGE_EMULATOR_HOST",
  "GOOGLE_CLOUD_PROJECT",
  "GCLOUD_PROJECT",
] as const;

/** The variables of {@linkcode GCS_WORKER_ENV} set here, for a worker of a `gs://` storage. */
export function storageWorkerEnv(storageUrl: string): Record<string, string> {
  if (!storageUrl.startsWith("gs://")) return {};
  const env: Record<string, string> = {};
  for (const name of GCS_WORKER_ENV) {
    const value = readEnv(name);
    if (value !== undefined) env[name] = value;
  }
  return env;
}
