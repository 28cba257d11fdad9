/**
 * One job's session on warm pods (`kubernetes: { warm: true }`): Indexed
 * Jobs of long-lived pods (`worker.ts --pool`), each running attempt after
 * attempt, handed out through the job's storage alone (see
 * lib/format/warm.ts and lib/worker/pool.ts):
 *
 * - `submit` queues attempts; as many as `parallelism` (at most 1,000) at
 *   a time wait as offers, one object each, besides those running. A pod takes one by creating its
 *   claim create-if-absent: exactly one pod wins.
 * - Every {@linkcode POLL_MS} the session lists the offers and the claims
 *   (two listings, however many attempts): a claim seen means started; an
 *   offer and claim both gone means ended, with the exit code from the
 *   result record (or an end record when there is none); a claim not
 *   renewed for four heartbeats means its pod is lost (reason `disrupted`,
 *   not counted against `maxRetries`, unless the task lost more pods than
 *   that allows).
 * - `cancel` deletes the offer and writes a stop request the pod running
 *   the attempt sees at its next heartbeat; the master enforces time limits
 *   this way too.
 * - Pods: as many as `parallelism` while there is work, counted from the
 *   pool Jobs' status (one watch); a pool Job is created for the shortfall.
 *   Idle pods exit after `idleMs` without offers, and all exit when the
 *   session closes (it writes `warm/offers/closed`).
 * - A master that dies leaves offers and claims: the pods drain them, and a
 *   new master with the same key adopts what still runs.
 *
 * @module
 */

import { BatchV1Api, CoreV1Api, type Informer, type V1Job } from "@kubernetes/client-node";
import type { AttemptSpec } from "../../format/attempt.ts";
import type { WarmClaim } from "../../format/warm.ts";
import { encodeWarm, readWarmEnd, WARM_FORMAT, WarmLayout } from "../../format/warm.ts";
import { readJson } from "../../format/json.ts";
import { EXIT_OK, EXIT_STOPPED, EXIT_TASK_ERROR } from "../../worker/exit_codes.ts";
import { POOL_DEFAULTS } from "../../worker/pool.ts";
import type { BackendSession, ExitReason } from "../backend.ts";
import { apiError, whereOf } from "./api_errors.ts";
import { explainPod, parseIndexes } from "./explain.ts";
import { jobSpec } from "./job_spec.ts";
import { batchName, JOB_LABEL, jobLabel } from "./names.ts";
import { KUBERNETES_DEFAULTS } from "./options.ts";
import type { SessionContext } from "./session.ts";
import { keepWatching, watchJobs } from "./watch.ts";

/** How often the session lists offers and claims, in milliseconds. */
export const POLL_MS = 500;
/** Heartbeats a claim may miss before its pod counts as lost. */
const MISSED_BEATS = 4;

/** An attempt handed to the pool. */
interface Handed {
  spec: AttemptSpec;
  /** The claim was seen (reported as started). */
  claimed: boolean;
  /** The claim's last `updated` time, and when the session saw it change. */
  beat?: number;
  changedAt: number;
}

/** A job's session on warm pods. */
export class WarmKubernetesSession implements BackendSession {
  /** The master stops attempts past the time limit: a pod outlives its attempts. */
  readonly enforcesTimeouts = false;
  readonly #ctx: SessionContext;
  readonly #batch: BatchV1Api;
  readonly #warm: WarmLayout;
  readonly #selector: string;
  readonly #heartbeatMs: number;
  /** Attempts not offered yet. */
  readonly #queue: AttemptSpec[] = [];
  /** Attempts offered or running, by id. */
  readonly #handed = new Map<string, Handed>();
  /** Attempts of each task whose pods were lost. */
  readonly #lostPods = new Map<number, number>();
  /** Attempts the session stopped, whose claims may linger until their pods notice. */
  readonly #stopped = new Set<string>();
  /** The pool Jobs, by name, as last seen (or as created, until seen). */
  readonly #jobs = new Map<string, V1Job>();
  #informer: Informer<V1Job> | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #polling: Promise<void> = Promise.resolve();
  #creating = false;
  /** When a pod last claimed or ended an attempt (or the first offer was made). */
  #progressAt: number | undefined;
  /** When the pods were last looked at for why none claims the offers. */
  #podsCheckedAt = 0;
  /** Stopped attempts whose pods have not let go of them yet, as of the last poll. */
  #lingering = 0;
  #closed = false;
  #validated = false;

  /** Use {@linkcode WarmKubernetesSession.open}. */
  private constructor(ctx: SessionContext) {
    this.#ctx = ctx;
    this.#batch = ctx.kubeConfig.makeApiClient(BatchV1Api);
    this.#warm = new WarmLayout(ctx.job.layout);
    this.#selector = `${JOB_LABEL}=${jobLabel(ctx.job.key)}`;
    this.#heartbeatMs = ctx.options.warmTimings?.heartbeatMs ?? POOL_DEFAULTS.heartbeatMs;
  }

  /**
   * Open a session: reopen the job to pods, adopt the attempts an earlier
   * master left offered or running, watch the pool Jobs, and start polling.
   *
   * @throws {BackendError} The cluster is unreachable or the user may not list Jobs.
   */
  static async open(ctx: SessionContext): Promise<WarmKubernetesSession> {
    const session = new WarmKubernetesSession(ctx);
    const { storage } = ctx.job;
    await storage.delete(session.#warm.closed);
    const offers = await session.#list("offers");
    const claims = await session.#list("claims");
    for (const [id, { spec }] of [...offers, ...claims]) {
      if (session.#handed.has(id)) continue;
      const claimed = claims.get(id);
      session.#handed.set(id, {
        spec,
        claimed: claimed !== undefined,
        beat: claimed?.updated,
        changedAt: Date.now(),
      });
      session.#event(spec, {
        type: "waiting",
        detail: claimed
          ? "attached: it runs on a warm pod an earlier master started"
          : "attached: it waits for a warm pod, offered by an earlier master",
      });
    }
    await session.#watch();
    session.#schedule();
    return session;
  }

  #where() {
    return whereOf(this.#ctx.kubeConfig, this.#ctx.namespace);
  }

  /** The attempts named under one folder, by id, with their objects' update times. */
  async #list(kind: "offers" | "claims") {
    const found = new Map<string, { spec: AttemptSpec; updated: number }>();
    for await (const info of this.#ctx.job.storage.list(this.#warm.folder(kind))) {
      const spec = this.#warm.parse(kind, info.key);
      if (spec) found.set(spec.attempt, { spec, updated: info.updated.getTime() });
    }
    return found;
  }

  async #watch(): Promise<void> {
    const ns = this.#ctx.namespace;
    const jobs = watchJobs(this.#ctx.kubeConfig, ns, this.#selector);
    const seen = (job: V1Job) => {
      const name = job.metadata?.name;
      if (name && job.metadata?.annotations?.[POOL_ANNOTATION]) this.#jobs.set(name, job);
    };
    jobs.on("add", seen);
    jobs.on("update", seen);
    jobs.on("delete", (job) => this.#jobs.delete(job.metadata?.name ?? ""));
    keepWatching(jobs, () => this.#closed);
    this.#informer = jobs;
    try {
      await jobs.start();
    } catch (error) {
      throw apiError(error, "watch Jobs", this.#where());
    }
  }

  /** Pods the pool Jobs still run or will start: each Job's indexes not finished. */
  #pods(): number {
    let pods = 0;
    for (const job of this.#jobs.values()) {
      const finished = job.status?.conditions?.some((c) =>
        (c.type === "Complete" || c.type === "Failed") && c.status === "True"
      );
      if (finished || job.metadata?.deletionTimestamp) continue;
      const done = parseIndexes(job.status?.completedIndexes).size +
        parseIndexes(job.status?.failedIndexes).size;
      pods += Math.max(0, (job.spec?.completions ?? 0) - done);
    }
    return pods;
  }

  /**
   * The most offers waiting for a pod at once: `parallelism`, at most 1,000
   * (one page of a listing), so a pod that ends an attempt finds the next
   * without waiting for the master.
   */
  get #spare(): number {
    return Math.min(this.#ctx.job.parallelism, 1000);
  }

  async submit(attempts: readonly AttemptSpec[]): Promise<void> {
    if (this.#closed) throw new Error("Cannot submit: the session is closed");
    if (attempts.length === 0) return;
    if (!this.#validated) {
      // Let the API server check the pool Job (and our permission) before anything is written.
      try {
        await this.#batch.createNamespacedJob({
          namespace: this.#ctx.namespace,
          body: this.#poolJob(1),
          dryRun: "All",
        });
      } catch (error) {
        throw apiError(error, "create Jobs", this.#where());
      }
      this.#validated = true;
    }
    this.#queue.push(...attempts);
    await this.#offer();
    await this.#grow();
  }

  /** Offer queued attempts, up to the spare offers wanted. */
  async #offer(): Promise<void> {
    const batch: AttemptSpec[] = [];
    let waiting = 0;
    for (const handed of this.#handed.values()) if (!handed.claimed) waiting++;
    while (this.#queue.length > 0 && waiting + batch.length < this.#spare) {
      batch.push(this.#queue.shift()!);
    }
    for (const spec of batch) {
      this.#handed.set(spec.attempt, { spec, claimed: false, changedAt: Date.now() });
    }
    await Promise.all(batch.map((spec) =>
      this.#ctx.job.storage.put(
        this.#warm.key("offers", spec),
        encodeWarm({ format: WARM_FORMAT, kind: "offer", ...spec }),
      )
    ));
  }

  /** Start pods for the work there is, up to `parallelism`. */
  async #grow(): Promise<void> {
    if (this.#creating || this.#closed) return;
    const wanted = Math.min(
      this.#ctx.job.parallelism,
      this.#queue.length + this.#handed.size + this.#lingering,
    );
    const missing = wanted - this.#pods();
    if (missing <= 0) return;
    this.#creating = true;
    const body = this.#poolJob(missing);
    try {
      await this.#batch.createNamespacedJob({ namespace: this.#ctx.namespace, body });
      this.#jobs.set(body.metadata!.name!, body);
    } catch (error) {
      throw apiError(error, "create Jobs", this.#where());
    } finally {
      this.#creating = false;
    }
  }

  #poolJob(pods: number): V1Job {
    const job = jobSpec({
      job: this.#ctx.job,
      options: this.#ctx.options,
      namespace: this.#ctx.namespace,
      name: batchName(this.#ctx.job.key),
      completions: pods,
      runtime: this.#ctx.runtime,
      pool: true,
    });
    job.metadata!.annotations = { ...job.metadata!.annotations, [POOL_ANNOTATION]: "true" };
    return job;
  }

  #schedule(): void {
    if (this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#polling = this.#poll().catch(() => {}).finally(() => this.#schedule());
    }, POLL_MS);
  }

  /** One look at the offers and claims. */
  async #poll(): Promise<void> {
    if (this.#closed) return;
    // Offers first: a pod creates its claim before it deletes the offer.
    const offers = await this.#list("offers");
    const claims = await this.#list("claims");
    const now = Date.now();
    const ending: Promise<void>[] = [];
    for (const [id, handed] of this.#handed) {
      const claim = claims.get(id);
      if (claim) {
        if (!handed.claimed) {
          handed.claimed = true;
          ending.push(this.#started(handed));
        }
        if (handed.beat !== claim.updated) {
          handed.beat = claim.updated;
          handed.changedAt = now;
        } else if (now - handed.changedAt > MISSED_BEATS * this.#heartbeatMs) {
          ending.push(this.#lost(handed, now - handed.changedAt));
        }
      } else if (!offers.has(id)) {
        ending.push(this.#ended(handed));
      }
    }
    this.#lingering = 0;
    for (const [id, { spec, updated }] of claims) {
      if (this.#handed.has(id) || !this.#stopped.has(id)) continue;
      if (now - updated > MISSED_BEATS * this.#heartbeatMs + 60_000) {
        // Renewed after it was given up, by a pod that is gone now: tidy up.
        ending.push(this.#ctx.job.storage.delete(this.#warm.key("claims", spec)));
      } else {
        this.#lingering++; // its pod is still stopping it
      }
    }
    await Promise.all(ending);
    await this.#checkStarved(now);
    await this.#offer();
    await this.#grow().catch(() => {});
  }

  /**
   * Offers no pod took for longer than `unstartableTimeoutMs` while no pod
   * made progress: when a pod of the pool cannot start (unschedulable, image
   * missing), fail them with the reason instead of waiting for ever.
   */
  async #checkStarved(now: number): Promise<void> {
    const limit = this.#ctx.options.unstartableTimeoutMs ??
      KUBERNETES_DEFAULTS.unstartableTimeoutMs;
    const waiting = [...this.#handed.values()].filter((h) => !h.claimed);
    if (waiting.length === 0) {
      this.#progressAt = now;
      return;
    }
    this.#progressAt ??= now;
    if (now - this.#progressAt < limit || now - this.#podsCheckedAt < 10_000) return;
    this.#podsCheckedAt = now;
    let blocked: string | undefined;
    try {
      const pods = await this.#ctx.kubeConfig.makeApiClient(CoreV1Api).listNamespacedPod({
        namespace: this.#ctx.namespace,
        labelSelector: this.#selector,
      });
      for (const pod of pods.items) {
        const state = explainPod(pod);
        if (state.phase === "pending" && state.blocker) {
          blocked = `pod ${pod.metadata?.name} ${state.detail}`;
        }
      }
    } catch {
      return; // looked at again later
    }
    if (!blocked) return;
    for (const handed of waiting) {
      this.#handed.delete(handed.spec.attempt);
      await this.#ctx.job.storage.delete(this.#warm.key("offers", handed.spec));
      this.#exited(
        handed.spec,
        "unstartable",
        undefined,
        `no warm pod took it for ${Math.round((now - this.#progressAt) / 1000)} s: ${blocked}`,
      );
    }
  }

  async #started(handed: Handed): Promise<void> {
    this.#progressAt = Date.now();
    let pod: string | undefined;
    try {
      const key = this.#warm.key("claims", handed.spec);
      pod = (await readJson<WarmClaim>(this.#ctx.job.storage, key, "warm claim")).pod;
    } catch {
      // Ended meanwhile; the pod's name is only for the status page.
    }
    this.#ctx.onEvent({
      type: "started",
      task: handed.spec.task,
      attempt: handed.spec.attempt,
      at: new Date(),
      ...(pod ? { host: pod } : {}),
    });
  }

  /**
   * Its pod stopped renewing the claim: stop it should it come back, and
   * report it disrupted (not counted against `maxRetries`: a pod deleted,
   * preempted or drained), unless the task lost more pods than `maxRetries`
   * allows, when it counts as a crash (a task that kills its pod).
   */
  async #lost(handed: Handed, silentMs: number): Promise<void> {
    const { storage } = this.#ctx.job;
    const lost = (this.#lostPods.get(handed.spec.task) ?? 0) + 1;
    this.#lostPods.set(handed.spec.task, lost);
    this.#handed.delete(handed.spec.attempt);
    this.#stopped.add(handed.spec.attempt);
    await storage.put(this.#warm.key("stops", handed.spec), new Uint8Array());
    await storage.delete(this.#warm.key("claims", handed.spec));
    const counted = lost > this.#ctx.job.maxRetries + 1;
    this.#exited(
      handed.spec,
      counted ? "lost" : "disrupted",
      undefined,
      `its warm pod stopped renewing its claim (silent for ${
        Math.round(silentMs / 1000)
      } s; pod ${lost} lost by this task${counted ? "" : ", not counted"})`,
    );
  }

  /** Offer and claim are gone: the pod ended it. Its exit code comes from what it stored. */
  async #ended(handed: Handed): Promise<void> {
    const { storage, layout } = this.#ctx.job;
    this.#handed.delete(handed.spec.attempt);
    this.#progressAt = Date.now();
    if (!handed.claimed) await this.#started(handed);
    const { task, attempt } = handed.spec;
    const endKey = this.#warm.key("ends", handed.spec);
    let code: number | undefined;
    let pod = "";
    if (await storage.stat(endKey)) {
      const end = await readWarmEnd(storage, endKey);
      code = end.code;
      pod = ` on pod ${end.pod}`;
      await storage.delete(endKey);
    } else if (await storage.stat(layout.result(task, attempt, "ok"))) code = EXIT_OK;
    else if (await storage.stat(layout.result(task, attempt, "error"))) code = EXIT_TASK_ERROR;
    else code = EXIT_OK; // stood down: another attempt of the task had stored a value
    const reason: ExitReason = code === EXIT_OK || code === EXIT_TASK_ERROR
      ? "exited"
      : code === EXIT_STOPPED
      ? "disrupted"
      : "exited";
    this.#exited(
      handed.spec,
      reason,
      code,
      code === EXIT_STOPPED
        ? `its warm pod was stopped${pod}; the attempt runs again (not counted)`
        : code === EXIT_OK || code === EXIT_TASK_ERROR
        ? "ended on a warm pod"
        : `the worker exited with code ${code}${pod}; see the pod's log`,
    );
  }

  #exited(
    spec: AttemptSpec,
    reason: ExitReason,
    exitCode: number | undefined,
    detail: string,
  ): void {
    this.#ctx.onEvent({
      type: "exited",
      task: spec.task,
      attempt: spec.attempt,
      at: new Date(),
      reason,
      exitCode,
      detail,
    });
  }

  #event(spec: AttemptSpec, event: { type: "waiting"; detail: string }): void {
    this.#ctx.onEvent({ ...event, task: spec.task, attempt: spec.attempt, at: new Date() });
  }

  async cancel(attempts: readonly string[]): Promise<void> {
    const { storage } = this.#ctx.job;
    const ids = new Set(attempts);
    for (let i = this.#queue.length - 1; i >= 0; i--) {
      const spec = this.#queue[i]!;
      if (!ids.has(spec.attempt)) continue;
      this.#queue.splice(i, 1);
      this.#exited(spec, "cancelled", undefined, "cancelled before it was offered");
    }
    await Promise.all([...ids].map(async (id) => {
      const handed = this.#handed.get(id);
      if (!handed) return;
      this.#handed.delete(id);
      this.#stopped.add(id);
      // A pod that claims it meanwhile sees the stop request at its first heartbeat.
      await storage.put(this.#warm.key("stops", handed.spec), new Uint8Array());
      await storage.delete(this.#warm.key("offers", handed.spec));
      this.#exited(handed.spec, "cancelled", undefined, "stopped by kubeface");
    }));
  }

  async close(options: { stopRunning?: boolean } = {}): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    await this.#polling;
    const stopRunning = options.stopRunning ?? true;
    if (stopRunning) {
      const running = this.#handed.size > 0;
      await this.cancel([...this.#queue.map((s) => s.attempt), ...this.#handed.keys()]);
      // Idle pods exit at their next listing; running ones at the end of a stopped attempt.
      await this.#ctx.job.storage.put(this.#warm.closed, new Uint8Array()).catch(() => {});
      if (running) {
        for (const name of this.#jobs.keys()) await this.#deleteJob(name);
      } else {
        await this.#tidy();
      }
    }
    await this.#informer?.stop().catch(() => {});
  }

  /**
   * Remove what attempts left behind (ends, and the stop requests of
   * attempts no pod holds any more); the closed marker stays. A stopped
   * attempt still claimed (a speculative loser) keeps its stop request: its
   * pod sees it, ends the attempt, and then sees the job closed.
   */
  async #tidy(): Promise<void> {
    const { storage } = this.#ctx.job;
    const claimed = await this.#list("claims");
    for (const kind of ["stops", "ends"] as const) {
      for await (const { key } of storage.list(this.#warm.folder(kind))) {
        const spec = this.#warm.parse(kind, key);
        if (kind === "stops" && spec && claimed.has(spec.attempt)) continue;
        await storage.delete(key).catch(() => {});
      }
    }
  }

  async #deleteJob(name: string): Promise<void> {
    try {
      await this.#batch.deleteNamespacedJob({
        name,
        namespace: this.#ctx.namespace,
        propagationPolicy: "Background",
      });
    } catch {
      // Already gone (its TTL, or a user).
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** Annotation of the Kubernetes Jobs that are pools of warm pods. */
export const POOL_ANNOTATION = "kubeface.dev/warm-pool";
