/**
 * Which GCS JSON API operation an HTTP request is, named as in
 * googleapis/conformance-tests `storage/v1/retry_tests.json`
 * (`storage.objects.get`, `storage.objects.insert`, …), so the fault proxy can
 * apply a scenario's instructions to the operations it names, the way
 * storage-testbench does with its Retry Test API.
 *
 * @module
 */

/** What the proxy knows about one request. */
export interface RequestInfo {
  /** HTTP method, upper case. */
  method: string;
  /** Path and query, as in the request line. */
  target: string;
  /** The operation, e.g. `storage.objects.get`, or `undefined` for other requests. */
  operation: string | undefined;
  /** A request of an upload session (chunk or status query), not its start. */
  uploadSession: boolean;
  /** The request's `Content-Range`, e.g. `bytes 0-262143/*` or `bytes *\/*`. */
  contentRange: string | undefined;
  /** The request's `Range`, e.g. `bytes=262144-`. */
  range: string | undefined;
  /** The declared body length (`Content-Length`), if any. */
  contentLength: number | undefined;
}

/** A parsed `Content-Range` of an upload request. */
export interface UploadRange {
  /** First byte of the chunk, or `undefined` for a status query (`bytes *\/…`). */
  first: number | undefined;
  /** Last byte of the chunk (inclusive). */
  last: number | undefined;
  /** Total size, or `undefined` when `*`. */
  total: number | undefined;
}

/** Parse `bytes A-B/T`, `bytes A-B/*`, `bytes *\/T` or `bytes *\/*`. */
export function parseUploadRange(value: string | undefined): UploadRange | undefined {
  const match = /^bytes (?:(\d+)-(\d+)|\*)\/(\d+|\*)$/.exec(value?.trim() ?? "");
  if (!match) return undefined;
  const number = (text: string | undefined) =>
    text === undefined || text === "*" ? undefined : Number(text);
  return { first: number(match[1]), last: number(match[2]), total: number(match[3]) };
}

/** A header's value in a raw HTTP head, case-insensitively. */
export function headerOf(head: string, name: string): string | undefined {
  const pattern = new RegExp(`\\r\\n${name}\\s*:\\s*([^\\r\\n]*)`, "i");
  return pattern.exec("\r\n" + head)?.[1]?.trim();
}

/**
 * Classify a request by its head (request line and headers). Paths with and
 * without the `/storage/v1` prefix are recognised, as are both emulators'
 * download and upload URLs.
 */
export function describeRequest(head: string): RequestInfo {
  const [method = "", target = ""] = head.split(" ", 2);
  const path = target.split("?", 1)[0] ?? "";
  const query = target.slice(path.length);
  const length = headerOf(head, "content-length");
  const uploadSession = /[?&]upload_id=/.test(query) || path.includes("/upload/resumable/");
  return {
    method,
    target,
    operation: operationOf(method, path),
    uploadSession,
    contentRange: headerOf(head, "content-range"),
    range: headerOf(head, "range"),
    contentLength: length === undefined ? undefined : Number(length),
  };
}

function operationOf(method: string, path: string): string | undefined {
  const api = path.replace(/^\/(upload|download)(?=\/)/, "").replace(/^\/storage\/v1(?=\/)/, "");
  const upload = path.startsWith("/upload/");
  if (upload && (method === "POST" || method === "PUT")) return "storage.objects.insert";
  if (/^\/b\/[^/]+\/o\/.+$/.test(api)) {
    if (method === "GET") return "storage.objects.get";
    if (method === "DELETE") return "storage.objects.delete";
    if (method === "PATCH") return "storage.objects.patch";
    return undefined;
  }
  if (/^\/b\/[^/]+\/o$/.test(api)) return method === "GET" ? "storage.objects.list" : undefined;
  if (/^\/b\/[^/]+$/.test(api)) return method === "GET" ? "storage.buckets.get" : undefined;
  if (api === "/b") return method === "POST" ? "storage.buckets.insert" : "storage.buckets.list";
  return undefined;
}
