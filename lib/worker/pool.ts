/**
 * A warm pod's loop (`worker.ts --pool`, the Kubernetes backend's `warm`
 * mode): list the job's offers, take one by creating its claim
 * create-if-absent (exactly one pod wins) and checking that the offer is
 * still there (a pod that took it earlier deletes it before it releases
 * its claim, so a stale listing cannot run it twice), run it in the worker's task
 * thread, renew the claim while it runs and look for a stop request, then
 * record how it ended and delete the claim. Storage is the only channel;
 * the master decides what runs (see lib/format/warm.ts for the objects).
 *
 * An idle pod lists the offers with a backoff (up to `pollMs`); it exits
 * when the job is closed, when it has found no offer for `idleMs`, or when
 * it is stopped (SIGTERM), after its running attempt.
 *
 * @module
 */

import { hostName } from "../host.ts";
import type { AttemptSpec } from "../format/attempt.ts";
import type { JobLayout } from "../format/layout.ts";
import { encodeWarm, WARM_FORMAT, WarmLayout } from "../format/warm.ts";
import { errorMessage } from "../errors.ts";
import type { Storage } from "../storage/storage.ts";
import { EXIT_OK, EXIT_STOPPED, EXIT_TASK_ERROR } from "./exit_codes.ts";

/** Timings of a warm pod, in milliseconds. */
export interface PoolTimings {
  /**
   * How often a running attempt's claim is renewed (and its stop request looked for).
   *
   * @default {5000}
   */
  heartbeatMs?: number;
  /**
   * How long a pod waits without finding an offer before it exits.
   *
   * @default {60000}
   */
  idleMs?: number;
  /**
   * Longest pause between two listings of an idle pod (the backoff's cap).
   *
   * @default {2000}
   */
  pollMs?: number;
}

/** Defaults of {@linkcode PoolTimings}. */
export const POOL_DEFAULTS: Required<PoolTimings> = {
  heartbeatMs: 5000,
  idleMs: 60_000,
  pollMs: 2000,
};

/** What {@linkcode runPool} needs. */
export interface PoolOptions extends PoolTimings {
  storage: Storage;
  layout: JobLayout;
  /** Runs one attempt; resolves with its exit code (it never throws). */
  run: (spec: AttemptSpec) => Promise<number>;
  /** Stops the running attempt: its task's signal fires. */
  stop: (reason: string, attempt: string) => void;
  /** Aborted when the pod is being stopped (SIGTERM): take nothing more. */
  signal: AbortSignal;
  /**
   * Name of the pod, written in claims.
   *
   * @default {the host name}
   */
  pod?: string;
  /**
   * Writes a line to the pod's log.
   *
   * @default {nothing}
   */
  log?: (line: string) => void;
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
  });

/**
 * Run offered attempts until the job is closed, no offer came for `idleMs`,
 * or `signal` aborts. Returns the pod's exit code: 0, or
 * {@linkcode EXIT_STOPPED} when it was stopped.
 *
 * @throws {StorageError} Storage failed (the pod then exits; its claim goes stale).
 */
export async function runPool(options: PoolOptions): Promise<number> {
  const { storage, signal } = options;
  const heartbeatMs = options.heartbeatMs ?? POOL_DEFAULTS.heartbeatMs;
  const idleMs = options.idleMs ?? POOL_DEFAULTS.idleMs;
  const pollMs = options.pollMs ?? POOL_DEFAULTS.pollMs;
  const pod = options.pod ?? hostName();
  const log = options.log ?? (() => {});
  const warm = new WarmLayout(options.layout);
  let idleSince = Date.now();
  let pause = 100;
  while (!signal.aborted) {
    const offers: AttemptSpec[] = [];
    let closed = false;
    for await (const { key } of storage.list(warm.folder("offers"))) {
      if (key === warm.closed) closed = true;
      const spec = warm.parse("offers", key);
      if (spec) offers.push(spec);
    }
    if (closed) {
      log("the job is closed; exiting");
      return EXIT_OK;
    }
    const spec = await claimOne(offers);
    if (!spec) {
      if (offers.length === 0 && Date.now() - idleSince >= idleMs) {
        log(`no offer for ${Math.round(idleMs / 1000)} s; exiting`);
        return EXIT_OK;
      }
      await sleep(offers.length === 0 ? pause : 50 + Math.random() * 100, signal);
      if (offers.length === 0) pause = Math.min(pause * 2, pollMs);
      continue;
    }
    await storage.delete(warm.key("offers", spec)).catch(() => {});
    log(`task ${spec.task}, attempt ${spec.attempt}`);
    const code = await runClaimed(spec);
    if (code !== EXIT_OK && code !== EXIT_TASK_ERROR) {
      const end = { format: WARM_FORMAT, kind: "end", ...spec, code, pod } as const;
      await storage.put(warm.key("ends", spec), encodeWarm(end));
    }
    await storage.delete(warm.key("claims", spec));
    idleSince = Date.now();
    pause = 100;
  }
  return EXIT_STOPPED;

  /** Try the offers in a random order; the first claim created wins. */
  async function claimOne(offers: AttemptSpec[]): Promise<AttemptSpec | undefined> {
    for (let i = offers.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [offers[i], offers[j]] = [offers[j]!, offers[i]!];
    }
    for (const spec of offers) {
      if (signal.aborted) return undefined;
      if (!(await storage.put(warm.key("claims", spec), claim(spec), { ifAbsent: true }))) continue;
      // The listing may be older than the claim: another pod may have taken the offer, run
      // it and released its claim since. Only an offer still there is this pod's to run.
      if (await storage.stat(warm.key("offers", spec))) return spec;
      await storage.delete(warm.key("claims", spec));
    }
    return undefined;
  }

  function claim(spec: AttemptSpec): Uint8Array {
    return encodeWarm({
      format: WARM_FORMAT,
      kind: "claim",
      ...spec,
      pod,
      claimedAt: new Date().toISOString(),
      heartbeatMs,
    });
  }

  /** Run a claimed attempt, renewing its claim and looking for a stop request meanwhile. */
  async function runClaimed(spec: AttemptSpec): Promise<number> {
    let running = true;
    let wake = () => {};
    const beating = (async () => {
      while (running) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, heartbeatMs);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        if (!running) return;
        try {
          if (await storage.stat(warm.key("stops", spec))) {
            options.stop("kubeface stopped the attempt", spec.attempt);
          }
          await storage.put(warm.key("claims", spec), claim(spec));
        } catch (error) {
          log(`cannot renew the claim of attempt ${spec.attempt}: ${errorMessage(error)}`);
        }
      }
    })();
    try {
      return await options.run(spec);
    } finally {
      running = false;
      wake();
      await beating;
    }
  }
}
