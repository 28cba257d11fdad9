/**
 * One master per job: a lease in the job's storage. Leases are numbered
 * objects, `jobs/<key>/lease/<epoch>.json`, each created only if absent (a
 * generation precondition on GCS, an exclusive create on local storage), so
 * of two masters that start together exactly one gets the next epoch. The
 * holder renews its lease as it runs and marks it released at the end; a
 * master takes a job over only when the latest lease is released, stale
 * (not renewed for {@linkcode LEASE_TTL_MS}, or its holder's process is gone
 * from this host), or when told to (`--overwrite`). A holder that finds a
 * newer lease has lost the job and stops.
 *
 * @module
 */

import { errorMessage, JobBusyError } from "../errors.ts";
import { readJson, writeJson } from "../format/json.ts";
import type { JobLayout } from "../format/layout.ts";
import { hostName } from "../host.ts";
import type { Storage } from "../storage/storage.ts";
import { type Clock, systemClock, type TimerId } from "./clock.ts";

/** How often the holder renews its lease. */
export const LEASE_RENEW_MS = 10_000;
/** A lease not renewed for this long is stale: its master is gone. */
export const LEASE_TTL_MS = 45_000;

/** Contents of `jobs/<key>/lease/<epoch>.json`. */
export interface LeaseRecord {
  format: 1;
  /** Number of the lease; the highest one is the job's. */
  epoch: number;
  /** Host the master runs on. */
  host: string;
  /** Process id of the master. */
  pid: number;
  /** When the master took the job (ISO 8601). */
  since: string;
  /** When it last renewed the lease (ISO 8601). */
  renewedAt: string;
  /** The master ended and let the job go. */
  released: boolean;
}

/** Options of {@linkcode acquireLease}. */
export interface AcquireOptions {
  /** Take the job even from a running master. @default {false} */
  takeOver?: boolean;
  /** @default {systemClock} */
  clock?: Clock;
}

/** Why a lease record lets another master take the job, or `undefined` while it holds. */
export function leaseFree(record: LeaseRecord, now: number): string | undefined {
  if (record.released) return "released";
  const quiet = now - Date.parse(record.renewedAt);
  if (!(quiet <= LEASE_TTL_MS)) return `not renewed for ${Math.round(quiet / 1000)} s`;
  if (record.host === hostName() && record.pid !== Deno.pid && !processAlive(record.pid)) {
    return `its process ${record.pid} is gone`;
  }
  return undefined;
}

/**
 * Whether a process runs on this host; `true` when that cannot be told.
 * Asks `kill -0` through the shell: Deno lets only `--allow-all` read /proc,
 * and macOS has none.
 */
function processAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return true;
  try {
    const { code, stderr } = new Deno.Command("sh", {
      args: ["-c", `kill -0 ${pid}`],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).outputSync();
    return code === 0 || !/no such process/i.test(new TextDecoder().decode(stderr));
  } catch {
    return true; // no shell, or no permission to run one
  }
}

/** The lease records of a job, newest first. */
async function leases(
  storage: Storage,
  layout: JobLayout,
): Promise<{ epoch: number; key: string }[]> {
  const found: { epoch: number; key: string }[] = [];
  for await (const { key } of storage.list(layout.leasePrefix)) {
    const epoch = layout.parseLease(key);
    if (epoch !== undefined) found.push({ epoch, key });
  }
  return found.sort((a, b) => b.epoch - a.epoch);
}

/**
 * Take the job's lease.
 *
 * @throws {JobBusyError} Another master holds it and `takeOver` is off.
 */
export async function acquireLease(
  storage: Storage,
  layout: JobLayout,
  options: AcquireOptions = {},
): Promise<Lease> {
  const clock = options.clock ?? systemClock;
  for (let tries = 0;; tries++) {
    const [latest, ...older] = await leases(storage, layout);
    if (latest && !options.takeOver) {
      const record = await readJson<LeaseRecord>(storage, latest.key, "lease")
        .catch(() => undefined); // a damaged lease holds nothing
      if (record && !leaseFree(record, clock.now())) throw new JobBusyError(layout.key, record);
    }
    const epoch = latest ? latest.epoch + 1 : 0;
    const now = new Date(clock.now()).toISOString();
    const record: LeaseRecord = {
      format: 1,
      epoch,
      host: hostName(),
      pid: Deno.pid,
      since: now,
      renewedAt: now,
      released: false,
    };
    if (await writeJson(storage, layout.lease(epoch), record, { ifAbsent: true })) {
      for (const old of latest ? [latest, ...older] : []) {
        await storage.delete(old.key).catch(() => {});
      }
      return new Lease(storage, layout, record, clock);
    }
    // Another master took this epoch first: look again.
    if (tries >= 5) {
      throw new Error(`Cannot take the lease of job '${layout.key}': it keeps changing`);
    }
  }
}

/** A held lease. */
export class Lease {
  #record: LeaseRecord;
  #lost: string | undefined;
  #taker: LeaseRecord | undefined;
  #timer: TimerId;

  /** Use {@linkcode acquireLease}. */
  constructor(
    readonly storage: Storage,
    readonly layout: JobLayout,
    record: LeaseRecord,
    readonly clock: Clock = systemClock,
  ) {
    this.#record = record;
  }

  /** The lease as stored. */
  get record(): Readonly<LeaseRecord> {
    return this.#record;
  }

  /** Why the lease was lost, once a newer one was found. */
  get lost(): string | undefined {
    return this.#lost;
  }

  /** The newer lease that took the job, when it could be read. */
  get taker(): LeaseRecord | undefined {
    return this.#taker;
  }

  /**
   * Renew the lease, unless a newer one exists. Returns `false` when the job
   * was taken over: the caller must stop.
   */
  async renew(): Promise<boolean> {
    if (this.#lost) return false;
    const [latest] = await leases(this.storage, this.layout);
    if (latest && latest.epoch !== this.#record.epoch) {
      const other = await readJson<LeaseRecord>(this.storage, latest.key, "lease")
        .catch(() => undefined);
      this.#taker = other;
      this.#lost = other
        ? `another master took the job over (host ${other.host}, pid ${other.pid}, since ${other.since})`
        : "another master took the job over";
      return false;
    }
    this.#record = { ...this.#record, renewedAt: new Date(this.clock.now()).toISOString() };
    await writeJson(this.storage, this.layout.lease(this.#record.epoch), this.#record);
    return true;
  }

  /**
   * Renew the lease every {@linkcode LEASE_RENEW_MS} until it is released;
   * `onLost` hears once when another master took the job (see
   * {@linkcode Lease.lost} and {@linkcode Lease.taker}). A renewal that
   * fails (storage down) is tried again at the next one.
   */
  keep(onLost: () => void): void {
    this.clock.clearInterval(this.#timer);
    let renewing = false;
    this.#timer = this.clock.setInterval(async () => {
      if (renewing) return;
      renewing = true;
      try {
        if (!(await this.renew())) {
          this.clock.clearInterval(this.#timer);
          onLost();
        }
      } catch {
        // Storage failed: the lease stays ours until it goes stale; try again.
      } finally {
        renewing = false;
      }
    }, LEASE_RENEW_MS);
  }

  /**
   * Make sure the job is still this master's before a write only the holder
   * may make (the manifest, deleting another attempt's result).
   *
   * @throws {JobBusyError} Another master took the job over.
   */
  async check(): Promise<void> {
    if (await this.renew()) return;
    const now = new Date(this.clock.now()).toISOString();
    throw new JobBusyError(
      this.layout.key,
      this.#taker ?? { host: "unknown", pid: 0, since: now, renewedAt: now },
    );
  }

  /** Let the job go: the next master may take it at once. */
  async release(): Promise<void> {
    this.clock.clearInterval(this.#timer);
    if (this.#lost || this.#record.released) return;
    this.#record = { ...this.#record, released: true };
    try {
      await writeJson(this.storage, this.layout.lease(this.#record.epoch), this.#record);
    } catch (error) {
      // The lease goes stale by itself; a later master waits for that.
      this.#lost = `cannot release the lease: ${errorMessage(error)}`;
    }
  }
}
