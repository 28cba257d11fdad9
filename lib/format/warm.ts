/**
 * The objects through which a master hands attempts to warm pods (the
 * Kubernetes backend's `warm` mode), all under `jobs/<key>/warm/`. Storage
 * is the only channel: no broker, no connection between master and pods.
 *
 * ```
 * warm/offers/<task>/<attempt>   an attempt waiting for a pod (master writes, the winner deletes)
 * warm/offers/closed             the job is closed: idle pods exit
 * warm/claims/<task>/<attempt>   the pod that runs it: created if absent (one winner), rewritten
 *                                as a heartbeat, deleted by the pod when the attempt ended
 * warm/ends/<task>/<attempt>     how an attempt that stored no record ended (exit code)
 * warm/stops/<task>/<attempt>    the master asks the pod running it to stop it
 * ```
 *
 * An attempt's task and id are in its keys, so a listing says everything
 * but the exit code of an attempt that stored no result. Every record
 * carries {@linkcode WARM_FORMAT}; a reader refuses another with a message
 * that names the version.
 *
 * @module
 */

import { CorruptObjectError } from "../errors.ts";
import type { AttemptSpec } from "./attempt.ts";
import { encodeJson, readJson } from "./json.ts";
import type { JobLayout } from "./layout.ts";
import type { Storage } from "../storage/storage.ts";

/** Version of the warm-pod records this kubeface writes and reads. */
export const WARM_FORMAT = 1;

/** The kinds of warm-pod objects, by their folder under `warm/`. */
export type WarmKind = "offers" | "claims" | "ends" | "stops";

/** Body of an offer: an attempt waiting for a pod. */
export interface WarmOffer {
  format: typeof WARM_FORMAT;
  kind: "offer";
  task: number;
  attempt: string;
}

/** Body of a claim: the pod that runs the attempt, rewritten as a heartbeat. */
export interface WarmClaim {
  format: typeof WARM_FORMAT;
  kind: "claim";
  task: number;
  attempt: string;
  /** Pod (host) name. */
  pod: string;
  /** When the pod claimed it (ISO 8601). */
  claimedAt: string;
  /** How often the pod renews the claim, in milliseconds. */
  heartbeatMs: number;
}

/** Body of an end: the exit code of an attempt that stored no record. */
export interface WarmEnd {
  format: typeof WARM_FORMAT;
  kind: "end";
  task: number;
  attempt: string;
  /** The worker's exit code for the attempt (see lib/worker/exit_codes.ts). */
  code: number;
  pod: string;
}

/** Keys of one job's warm-pod objects. */
export class WarmLayout {
  /** `jobs/<key>/warm/`. */
  readonly prefix: string;

  /** The warm-pod keys of a job. */
  constructor(layout: JobLayout) {
    this.prefix = `${layout.prefix}warm/`;
  }

  /** Prefix of one kind of object. */
  folder(kind: WarmKind): string {
    return `${this.prefix}${kind}/`;
  }

  /** The object of one kind for one attempt. */
  key(kind: WarmKind, spec: AttemptSpec): string {
    return `${this.folder(kind)}${spec.task}/${spec.attempt}`;
  }

  /** The marker that the job is closed: idle pods exit. It sits among the offers, so one listing sees both. */
  get closed(): string {
    return `${this.folder("offers")}closed`;
  }

  /** The attempt a key of `kind` names, if it is one. */
  parse(kind: WarmKind, key: string): AttemptSpec | undefined {
    const folder = this.folder(kind);
    const match = /^(\d+)\/([A-Za-z0-9._-]+)$/.exec(key.slice(folder.length));
    return key.startsWith(folder) && match
      ? { task: Number(match[1]), attempt: match[2]! }
      : undefined;
  }
}

/** The stored bytes of a warm record. */
export function encodeWarm(record: WarmOffer | WarmClaim | WarmEnd): Uint8Array {
  return encodeJson(record);
}

/**
 * Read an end record.
 *
 * @throws {CorruptObjectError} It is damaged, or of a warm format this kubeface does not know.
 * @throws {NotFoundError} There is none.
 */
export async function readWarmEnd(storage: Storage, key: string): Promise<WarmEnd> {
  const end = await readJson<WarmEnd>(storage, key, "warm attempt end");
  if (end.format !== WARM_FORMAT || end.kind !== "end" || typeof end.code !== "number") {
    throw new CorruptObjectError(
      `warm attempt end (${storage.url}${key})`,
      `it has warm format ${end.format} and kind '${end.kind}', but this kubeface reads format ${WARM_FORMAT} ends; run the job with the kubeface version that started it, or rerun it after \`kubeface cleanup\``,
    );
  }
  return end;
}
