/**
 * Kubernetes names and labels for kubeface's objects: valid DNS-1123 names,
 * label values derived from job keys, and the checks that reject malformed
 * user-given labels and quantities before anything is created.
 *
 * @module
 */

import { createHash } from "node:crypto";

/** Label every object kubeface creates carries. */
export const MANAGED_BY = { "app.kubernetes.io/managed-by": "kubeface" } as const;
/** Label holding a job's key (sanitised, see {@linkcode jobLabel}). */
export const JOB_LABEL = "kubeface.dev/job";
/** Label holding the name of one batch (one Kubernetes Job) of a kubeface job. */
export const RUN_LABEL = "kubeface.dev/run";
/** Annotation holding the exact job key. */
export const JOB_KEY_ANNOTATION = "kubeface.dev/job-key";
/** The name of the container that runs the task, used by the pod failure policy and for logs. */
export const CONTAINER = "worker";

const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const LABEL_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

function shortHash(text: string, length: number): string {
  return createHash("sha256").update(text).digest("hex").slice(0, length);
}

/** Lowercase letters, digits and `-`, trimmed of `-` at both ends, at most `max` long. */
function slug(text: string, max: number): string {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, "-").slice(0, max).replace(/^-+|-+$/g, "");
}

/**
 * The label value for a job key: readable, valid, and unique per key (a
 * hash of the exact key is appended), e.g. `squares-20261128-ab12cd34`.
 */
export function jobLabel(key: string): string {
  return `${slug(key, 50) || "job"}-${shortHash(key, 8)}`;
}

/**
 * A name for one Kubernetes Job of a kubeface job: a DNS-1123 label short
 * enough for the pod names derived from it, unique per call.
 */
export function batchName(key: string): string {
  const random = crypto.getRandomValues(new Uint8Array(4));
  const suffix = Array.from(random, (b) => (b % 36).toString(36)).join("");
  return `kf-${slug(key, 30) || "job"}-${shortHash(key, 4)}${suffix}`;
}

/** Whether `name` is a valid DNS-1123 label (namespaces, container names). */
export function isDnsLabel(name: string): boolean {
  return name.length <= 63 && DNS_LABEL.test(name);
}

/**
 * Check label (or annotation, with `values: false`) keys and values.
 *
 * @throws {TypeError} A key or value is malformed; the message says which and why.
 */
export function checkLabels(
  labels: Readonly<Record<string, string>>,
  what: "label" | "annotation" | "node selector",
): void {
  for (const [key, value] of Object.entries(labels)) {
    const slash = key.indexOf("/");
    const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
    const name = slash >= 0 ? key.slice(slash + 1) : key;
    if (
      (prefix !== undefined && (prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix))) ||
      name.length > 63 || !LABEL_NAME.test(name)
    ) {
      throw new TypeError(
        `Cannot use ${what} key '${key}': use an optional DNS prefix and '/', then 1 to 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit`,
      );
    }
    if (what !== "annotation" && (value.length > 63 || !LABEL_VALUE.test(value))) {
      throw new TypeError(
        `Cannot use ${what} value '${value}' of '${key}': use at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit`,
      );
    }
  }
}

const QUANTITY = /^[+]?(\d+(\.\d*)?|\.\d+)(([KMGTPE]i)|[numkMGTPE]|[eE][+-]?\d+)?$/;

/**
 * Check a resource quantity such as `500m`, `2`, `1.5Gi` or `512Mi`.
 *
 * @throws {TypeError} It is not a Kubernetes quantity.
 */
export function checkQuantity(value: string, what: string): string {
  if (!QUANTITY.test(value)) {
    throw new TypeError(
      `Cannot use ${what} '${value}': it is not a Kubernetes quantity; write e.g. 500m or 2 (CPU), 512Mi or 4Gi (memory)`,
    );
  }
  return value;
}
