/**
 * Deno permission flags for workers: what the user grants the task, merged
 * with what the worker itself needs to reach storage.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { readEnv } from "./env.ts";

/**
 * Permission names Deno accepts as `--allow-<name>`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { PERMISSION_NAMES } from "@kubeface/kubeface";
 *
 * assert.ok(PERMISSION_NAMES.includes("net"));
 * ```
 */
export const PERMISSION_NAMES = [
  "read",
  "write",
  "net",
  "env",
  "run",
  "sys",
  "ffi",
  "import",
] as const;

/** A permission name. */
export type PermissionName = typeof PERMISSION_NAMES[number];

/** Granted permissions: `true` for all, or a list of values (paths, hosts, …). */
export type PermissionSet = Partial<Record<PermissionName, true | string[]>>;

/**
 * Parse Deno permission flags: `-A`, `--allow-all`, `--allow-NAME` and
 * `--allow-NAME=a,b`.
 *
 * @throws {TypeError} A flag is not one of those.
 */
export function parsePermissions(flags: readonly string[]): PermissionSet {
  const set: PermissionSet = {};
  for (const flag of flags) {
    if (flag === "-A" || flag === "--allow-all") {
      for (const name of PERMISSION_NAMES) set[name] = true;
      continue;
    }
    const match = /^--allow-([a-z]+)(?:=(.*))?$/.exec(flag);
    const name = match?.[1] as PermissionName | undefined;
    if (!match || !name || !PERMISSION_NAMES.includes(name)) {
      throw new TypeError(
        `Cannot grant permission '${flag}': use -A, --allow-all or --allow-NAME[=VALUES] with NAME one of ${
          PERMISSION_NAMES.join(", ")
        }`,
      );
    }
    const values = match[2] === undefined ? true : match[2].split(",").filter((v) => v !== "");
    set[name] = mergeOne(set[name], values);
  }
  return set;
}

function mergeOne(
  a: true | string[] | undefined,
  b: true | string[] | undefined,
): true | string[] | undefined {
  if (a === true || b === true) return true;
  if (a === undefined) return b;
  if (b === undefined) return a;
  return [...new Set([...a, ...b])];
}

/** The union of permission sets. */
export function mergePermissions(...sets: PermissionSet[]): PermissionSet {
  const merged: PermissionSet = {};
  for (const set of sets) {
    for (const name of PERMISSION_NAMES) {
      const value = mergeOne(merged[name], set[name]);
      if (value !== undefined) merged[name] = value;
    }
  }
  return merged;
}

/** Turn a permission set back into flags, one per permission. */
export function permissionFlags(set: PermissionSet): string[] {
  const flags: string[] = [];
  for (const name of PERMISSION_NAMES) {
    const value = set[name];
    if (value === true) flags.push(`--allow-${name}`);
    else if (value !== undefined && value.length > 0) {
      flags.push(`--allow-${name}=${value.join(",")}`);
    }
  }
  return flags;
}

/**
 * Hosts a GCS client talks to: the storage API, Google's token endpoints,
 * and the metadata server that gives a pod its identity.
 */
export const GOOGLE_HOSTS: readonly string[] = [
  "storage.googleapis.com",
  "oauth2.googleapis.com",
  "sts.googleapis.com",
  "iamcredentials.googleapis.com",
  "metadata.google.internal",
  "169.254.169.254",
];

/** `host:port` of a `STORAGE_EMULATOR_HOST` value (`host:port` or a URL). */
function emulatorHost(value: string): string {
  return /^[a-z]+:\/\//i.test(value) ? new URL(value).host : value.replace(/\/.*$/, "");
}

/**
 * What a worker process needs to reach a storage, and nothing more: read
 * and write under a local root and its scratch directory; or, for GCS, the
 * network to the storage's hosts only (the emulator's, or Google's), the
 * environment (the client's settings and credentials) and the credentials
 * files.
 */
export function storagePermissions(storageUrl: string, scratch: string): PermissionSet {
  const base: PermissionSet = { read: [scratch], write: [scratch], sys: ["hostname"] };
  if (storageUrl.startsWith("gs://")) {
    const emulator = readEnv("STORAGE_EMULATOR_HOST");
    const credentials = readEnv("GOOGLE_APPLICATION_CREDENTIALS");
    const home = readEnv("HOME");
    return mergePermissions(base, {
      net: emulator ? [emulatorHost(emulator)] : [...GOOGLE_HOSTS],
      env: true,
      read: [
        ...(credentials ? [credentials] : []),
        ...(home ? [`${home}/.config/gcloud`] : []),
      ],
      sys: ["osRelease", "uid", "gid"],
    });
  }
  const root = storageUrl.startsWith("file://") ? fileURLToPath(storageUrl) : storageUrl;
  return mergePermissions(base, { read: [root], write: [root] });
}
