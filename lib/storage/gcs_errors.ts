/**
 * Turning errors of `@google-cloud/storage` and `google-auth-library` into
 * {@linkcode StorageError}s whose message says what to fix.
 *
 * @module
 */

import { NotFoundError, StorageError } from "../errors.ts";
import { httpStatusOf, isTransient } from "./retry.ts";

/** What was being done, for the message: "read", "write", "list", "delete", "open". */
export type GcsAction = "read" | "write" | "list" | "delete" | "open";

/** Where the error happened. */
export interface GcsErrorContext {
  /** The bucket. */
  bucket: string;
  /** The `gs://` URL of the object or root. */
  url: string;
  /** What was being done. */
  action: GcsAction;
}

const LOGIN_HINT =
  "run `gcloud auth application-default login`, set GOOGLE_APPLICATION_CREDENTIALS to a service account key, or on GKE check the Workload Identity binding";

function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (typeof error === "object" && error !== null && "message" in error) {
    return String((error as { message: unknown }).message);
  }
  return String(error);
}

/** Whether an error says that no credentials could be found or used. */
function isCredentialsError(error: unknown, text: string): boolean {
  return httpStatusOf(error) === 401 ||
    /could not load the default credentials|unable to detect a project id|invalid_grant|invalid_rapt|reauth|invalid credentials|refresh token|application default credentials|GOOGLE_APPLICATION_CREDENTIALS/i
      .test(text);
}

/**
 * Wrap any error of a GCS call into a `StorageError` (a `NotFoundError` for a
 * missing object when reading). Messages name the fix: the bucket to create,
 * the permission to grant, how to log in. `TypeError`s, `RangeError`s and
 * `StorageError`s pass through unchanged.
 */
export function wrapGcsError(error: unknown, context: GcsErrorContext): Error {
  if (
    error instanceof StorageError || error instanceof TypeError || error instanceof RangeError
  ) {
    return error;
  }
  const { bucket, url, action } = context;
  const status = httpStatusOf(error);
  const text = messageOf(error);
  const options = { cause: error };
  if (status === 404) {
    if (action === "read" && !/bucket/i.test(text)) return new NotFoundError(url, options);
    return new StorageError(
      `Cannot ${action} '${url}': bucket '${bucket}' does not exist; create it with \`gcloud storage buckets create gs://${bucket}\` or fix the URL`,
      url,
      options,
    );
  }
  if (status === 403) {
    const permission = /\bstorage\.[a-zA-Z]+\.[a-zA-Z]+\b/.exec(text)?.[0];
    const who = /^([^\s]+@[^\s]+) does not have/.exec(text)?.[1];
    const missing = permission
      ? `permission '${permission}' is denied${who ? ` to ${who}` : ""}`
      : `access is denied (${text})`;
    return new StorageError(
      `Cannot ${action} '${url}': ${missing}; check \`gcloud auth application-default login\` or the service account's roles on bucket '${bucket}' (e.g. roles/storage.objectAdmin)`,
      url,
      options,
    );
  }
  if (isCredentialsError(error, text)) {
    return new StorageError(
      `Cannot ${action} '${url}': no usable Application Default Credentials (${text}); ${LOGIN_HINT}`,
      url,
      options,
    );
  }
  const unreachable = /\b(ENOTFOUND|ECONNREFUSED|EAI_AGAIN|ENETUNREACH|EHOSTUNREACH)\b/.exec(text)
    ?.[1];
  if (unreachable) {
    return new StorageError(
      `Cannot ${action} '${url}': the storage API cannot be reached (${text}); check the network connection, or STORAGE_EMULATOR_HOST if you meant to use an emulator`,
      url,
      options,
    );
  }
  if (isTransient(error)) {
    return new StorageError(
      `Cannot ${action} '${url}': Google Cloud Storage kept failing after retries (${
        status ?? "connection"
      }: ${text}); try again later`,
      url,
      options,
    );
  }
  return new StorageError(
    `Cannot ${action} '${url}': ${status ? `${status} ` : ""}${text}`,
    url,
    options,
  );
}
