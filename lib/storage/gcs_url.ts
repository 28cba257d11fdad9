/**
 * Parsing `gs://BUCKET/PREFIX` URLs and the `STORAGE_EMULATOR_HOST` variable.
 *
 * @module
 */

/** A parsed `gs://` storage root. */
export interface GcsLocation {
  /** The bucket name. */
  bucket: string;
  /** Object name prefix of the root: `""` or ending in `/`, e.g. `runs/`. */
  prefix: string;
  /** The normalised URL, `gs://BUCKET/` or `gs://BUCKET/PREFIX/`. */
  url: string;
}

/**
 * Why a bucket name breaks the GCS naming rules, or `undefined` if it is
 * valid. See https://cloud.google.com/storage/docs/buckets#naming.
 */
export function bucketNameProblem(name: string): string | undefined {
  if (name === "") return "the bucket name is empty";
  if (/[A-Z]/.test(name)) return "bucket names are lowercase";
  if (!/^[a-z0-9._-]+$/.test(name)) {
    return "bucket names contain only lowercase letters, digits, '-', '_' and '.'";
  }
  if (!/^[a-z0-9]/.test(name) || !/[a-z0-9]$/.test(name)) {
    return "bucket names start and end with a letter or a digit";
  }
  const max = name.includes(".") ? 222 : 63;
  if (name.length < 3 || name.length > max) {
    return `bucket names have 3 to ${max} characters`;
  }
  if (name.split(".").some((part) => part.length === 0 || part.length > 63)) {
    return "each dot-separated part of a bucket name has 1 to 63 characters";
  }
  if (/^\d+\.\d+\.\d+\.\d+$/.test(name)) return "bucket names cannot be IP addresses";
  if (name.startsWith("goog") || /g(o|0)(o|0)gle/.test(name)) {
    return "bucket names cannot start with 'goog' or contain 'google'";
  }
  return undefined;
}

/**
 * Parse and normalise a `gs://BUCKET[/PREFIX]` URL. Repeated or trailing
 * slashes of the prefix are not allowed except one at the end.
 *
 * @throws {TypeError} The URL is not a valid `gs://` URL.
 */
export function parseGcsUrl(url: string): GcsLocation {
  const match = /^gs:\/\/([^/]*)(?:\/(.*))?$/i.exec(url);
  if (!match) {
    throw new TypeError(`Cannot open storage '${url}': expected a URL like gs://BUCKET/PREFIX`);
  }
  const bucket = match[1] ?? "";
  const problem = bucketNameProblem(bucket);
  if (problem) {
    throw new TypeError(
      `Cannot open storage '${url}': '${bucket}' is not a valid bucket name (${problem})`,
    );
  }
  const path = (match[2] ?? "").replace(/\/$/, "");
  if (path !== "" && path.split("/").some((part) => part === "" || part === "." || part === "..")) {
    throw new TypeError(
      `Cannot open storage '${url}': the prefix '${path}' has an empty, '.' or '..' part; use gs://BUCKET/a/b`,
    );
  }
  const prefix = path === "" ? "" : `${path}/`;
  return { bucket, prefix, url: `gs://${bucket}/${prefix}` };
}

/**
 * The API endpoint that a `STORAGE_EMULATOR_HOST` value names, as an origin
 * like `http://127.0.0.1:4443`, or `undefined` when the value is unset or
 * empty.
 *
 * Accepted forms are those of the Go and Python clients, `HOST:PORT` (plain
 * HTTP), plus `http(s)://HOST:PORT`, optionally followed by `/storage/v1`.
 * (`@google-cloud/storage` alone would use the value verbatim as its JSON API
 * base URL and assume HTTPS without a scheme; `GcsStorage` normalises it so
 * master and workers agree whatever form is set.)
 *
 * @throws {TypeError} The value is not a host or an http(s) URL.
 */
export function emulatorEndpoint(value: string | undefined): string | undefined {
  const text = value?.trim();
  if (!text) return undefined;
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`;
  let parsed: URL;
  try {
    parsed = new URL(withScheme);
  } catch {
    parsed = new URL("invalid:");
  }
  if (
    (parsed.protocol !== "http:" && parsed.protocol !== "https:") ||
    !/^\/?(storage\/v1\/?)?$/.test(parsed.pathname)
  ) {
    throw new TypeError(
      `Cannot use STORAGE_EMULATOR_HOST '${value}': give HOST:PORT or http://HOST:PORT`,
    );
  }
  return parsed.origin;
}
