/**
 * Construction of the `@google-cloud/storage` client (its retry policy and
 * the emulator endpoint; the library is imported lazily, on first use), and
 * of the authorised `fetch` for the requests kubeface makes itself.
 *
 * @module
 */

import type { Storage as GcsClient } from "@google-cloud/storage";
import { type GcsFetch, gcsFetch } from "./gcs_fetch.ts";

/** The clients of one storage. */
export interface Clients {
  /** For single requests and downloads; no retries of its own (`retry()` wraps each call). */
  plain: GcsClient;
  /** For resumable upload sessions: `fetch` with the same credentials. */
  fetch: GcsFetch;
  /** The JSON API origin, e.g. `https://storage.googleapis.com` or the emulator's. */
  endpoint: string;
}

/**
 * Make the clients of a storage, whose single requests time out after
 * `stallTimeout` ms. The library's own retries are off: the
 * library's retried streamed downloads crash under Deno, its delays cannot be
 * injected, and each call is retried by `retry()` with preconditions that
 * make it safe. With an emulator no credentials are used.
 */
export async function newClients(
  endpoint: string | undefined,
  stallTimeout: number,
): Promise<Clients> {
  const { Storage } = await import("@google-cloud/storage");
  const plain = new Storage({
    ...(endpoint ? { apiEndpoint: endpoint, projectId: "kubeface-emulator" } : {}),
    retryOptions: { autoRetry: false, maxRetries: 0 },
    // A request that has not answered by then fails (transient) and is retried.
    timeout: stallTimeout,
  });
  // With STORAGE_EMULATOR_HOST set the library takes the variable verbatim
  // as its JSON API base URL; point it at the emulator's /storage/v1.
  if (endpoint) (plain as unknown as { baseUrl: string }).baseUrl = `${endpoint}/storage/v1`;
  return {
    plain,
    fetch: gcsFetch(endpoint ? undefined : plain.authClient),
    endpoint: endpoint ?? plain.apiEndpoint.replace(/\/+$/, ""),
  };
}
