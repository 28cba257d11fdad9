/**
 * Construction of `@google-cloud/storage` clients: the retry policy, and the
 * emulator endpoint (the library is imported lazily, on first use).
 *
 * @module
 */

import type { Storage as GcsClient } from "@google-cloud/storage";
import { isTransient, type RetryOptions } from "./retry.ts";

/** The clients of one storage. */
export interface Clients {
  /** For single requests and downloads; no retries of its own. */
  plain: GcsClient;
  /** For resumable uploads; the library retries and resumes their chunks. */
  uploads: GcsClient;
}

/**
 * Make the two clients of a storage: one without the library's retries for
 * single requests, which `retry()` wraps (the library's retried streamed
 * downloads crash under Deno, and our delays can be injected), and one with
 * them for resumable uploads, whose chunk-level recovery only the library can
 * do. Both share one auth client.
 */
export async function newClients(
  endpoint: string | undefined,
  retry: Required<RetryOptions>,
): Promise<Clients> {
  const { Storage, IdempotencyStrategy } = await import("@google-cloud/storage");
  const make = (autoRetry: boolean, authClient?: GcsClient["authClient"]) => {
    const client = new Storage({
      ...(endpoint ? { apiEndpoint: endpoint, projectId: "kubeface-emulator" } : {}),
      ...(authClient ? { authClient } : {}),
      retryOptions: {
        autoRetry,
        maxRetries: retry.maxAttempts - 1,
        retryDelayMultiplier: retry.multiplier,
        // In seconds; the library's own first delay is about one second.
        maxRetryDelay: Math.max(2, retry.maxDelay / 1000),
        totalTimeout: 600,
        // Writes are whole-object overwrites of the same bytes or preconditioned.
        idempotencyStrategy: IdempotencyStrategy.RetryAlways,
        retryableErrorFn: (error) => isTransient(error),
      },
    });
    // With STORAGE_EMULATOR_HOST set the library takes the variable verbatim
    // as its JSON API base URL; point it at the emulator's /storage/v1.
    if (endpoint) (client as unknown as { baseUrl: string }).baseUrl = `${endpoint}/storage/v1`;
    return client;
  };
  const plain = make(false);
  return { plain, uploads: make(true, plain.authClient) };
}
