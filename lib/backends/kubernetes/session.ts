/**
 * One job's session on Kubernetes: each `submit` creates one Indexed Job
 * (one API call, however many attempts), whose pods and status are watched
 * the informer way (the state from a streaming watch-list, then changes, by
 * label; the state again after a 410; watches the server ends, see
 * `informer.ts` and `watch.ts`) and
 * turned into backend events. Pods that crash are restarted by Kubernetes
 * (`backoffLimitPerIndex`); the session reports an attempt's end once its
 * index succeeded or failed for good.
 *
 * @module
 */

import {
  BatchV1Api,
  CoreV1Api,
  type Informer,
  type KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type V1Job,
  type V1Pod,
} from "@kubernetes/client-node";
import type { AttemptSpec, RunMap } from "../../format/attempt.ts";
import { readJson, writeJson } from "../../format/json.ts";
import { EXIT_TASK_ERROR } from "../../worker/exit_codes.ts";
import type { BackendEvent, BackendSession, ExitReason, JobContext } from "../backend.ts";
import { apiError, whereOf } from "./api_errors.ts";
import { type Blocker, explainPod, parseIndexes, type PodState } from "./explain.ts";
import { jobSpec } from "./job_spec.ts";
import { batchName, JOB_LABEL, jobLabel, RUN_LABEL } from "./names.ts";
import { KUBERNETES_DEFAULTS, type KubernetesBackendOptions } from "./options.ts";
import type { Runtime } from "./runtime.ts";
import {
  MAX_COMPLETIONS_PER_JOB,
  parseSplitAnnotation,
  shareParallelism,
  SPLIT_ANNOTATION,
  splitAnnotation,
  splitAttempts,
} from "./split.ts";
import { keepWatching, watchJobs, watchPods } from "./watch.ts";

const INDEX_LABEL = "batch.kubernetes.io/job-completion-index";

/**
 * How long a failed index waits for its pod's word before the session asks the apiserver. The
 * Job and its pods come by separate watches, so the Job's `failedIndexes` can arrive before the
 * pod that failed the index (a disruption, a task error), and a loaded apiserver can hold a pod
 * watch back by more than this. The pods of the index then decide (see `#askIndex`); the session
 * waits and asks again as long as they do not.
 */
const INDEX_FAILURE_WAIT_MS = 30_000;
/** Failed indexes the session asks the apiserver about at once (a mass disruption fails many). */
const MAX_INDEX_QUESTIONS = 8;

/** One attempt: one index of one Kubernetes Job. */
interface Slot {
  spec: AttemptSpec;
  batch: string;
  index: number;
  ended: boolean;
  /** Pod whose start was reported. */
  runningPod?: string;
  /** Failed pods already counted, by uid. */
  failedPods: Set<string>;
  /** Failures Kubernetes counts against the index. */
  failures: number;
  lastFailure?: PodState;
  /** Since when the pod cannot start, and why. */
  blockedSince?: number;
  blocker?: Blocker;
  lastDetail?: string;
  /** When the Job reported the index failed (or the session last asked for its pods). */
  indexFailedAt?: number;
  /** The session is asking the apiserver for the index's pods. */
  asking?: boolean;
  /** Its pod was deleted while running, and how it ended was not seen. */
  podDeleted?: boolean;
}

/** Kubernetes Jobs of one batch too wide for one Job (see split.ts). */
interface SplitGroup {
  /** The group's parallelism, shared among its Jobs. */
  parallelism: number;
  /** Names of its Jobs, by position (a Job gone before an attach is missing). */
  jobs: (string | undefined)[];
  /** The parallelism each Job was given last. */
  current: number[];
  /** A raise failed: the session's tick tries again (no slot may end to trigger it). */
  retry?: boolean;
}

/**
 * Drop what the informer's cached copy of a pod no longer needs once the pod's event was handled:
 * its spec and field managers are most of it, and a wide map caches every pod (each event brings
 * the whole pod again). Its labels and status stay, for a delete seen only by a new list.
 */
function slim(pod: V1Pod): void {
  delete pod.spec;
  if (pod.metadata) delete pod.metadata.managedFields;
}

/** What a session needs. */
export interface SessionContext {
  job: JobContext;
  options: KubernetesBackendOptions;
  kubeConfig: KubeConfig;
  namespace: string;
  /** The stored runtime of stock-image pods; none with a worker image. */
  runtime: Runtime | undefined;
  onEvent: (event: BackendEvent) => void;
}

/** A job's session on Kubernetes. */
export class KubernetesSession implements BackendSession {
  /** Kubernetes stops pods that run past the time limit itself. */
  readonly enforcesTimeouts = true;
  readonly #ctx: SessionContext;
  readonly #batch: BatchV1Api;
  readonly #core: CoreV1Api;
  readonly #selector: string;
  readonly #slots = new Map<string, Slot>();
  readonly #batches = new Map<string, Slot[]>();
  /** Indexes of each batch not ended yet. */
  readonly #remaining = new Map<string, number>();
  /** Split groups, by name, and the group of each of their Jobs. */
  readonly #groups = new Map<string, SplitGroup>();
  readonly #groupOf = new Map<string, string>();
  readonly #informers: Informer<V1Pod | V1Job>[] = [];
  #timer: ReturnType<typeof setInterval> | undefined;
  #closed = false;
  /** When a pod of the session was last seen running or succeeded (see `#checkBlocked`). */
  #roomSeenAt = 0;
  /** Set once `close` began: nothing more is created. */
  #closing = false;
  /** Job creations under way, which `close` waits for before it deletes. */
  readonly #creating = new Set<Promise<unknown>>();
  #validated = false;
  /** Failed indexes being asked about (see `#askIndex`). */
  #questions = 0;

  /** Use {@linkcode KubernetesSession.open}. */
  private constructor(ctx: SessionContext) {
    this.#ctx = ctx;
    this.#batch = ctx.kubeConfig.makeApiClient(BatchV1Api);
    this.#core = ctx.kubeConfig.makeApiClient(CoreV1Api);
    this.#selector = `${JOB_LABEL}=${jobLabel(ctx.job.key)}`;
  }

  /**
   * Open a session: attach to the job's Kubernetes Jobs that still run
   * (their unfinished attempts are reported as waiting), then watch.
   *
   * @throws {BackendError} The cluster is unreachable or the user may not list Jobs.
   */
  static async open(ctx: SessionContext): Promise<KubernetesSession> {
    const session = new KubernetesSession(ctx);
    await session.#attach();
    await session.#watch();
    session.#timer = setInterval(() => session.#tick(), 1000);
    return session;
  }

  #where() {
    return whereOf(this.#ctx.kubeConfig, this.#ctx.namespace);
  }

  async #attach(): Promise<void> {
    let jobs: V1Job[];
    try {
      jobs = (await this.#batch.listNamespacedJob({
        namespace: this.#ctx.namespace,
        labelSelector: this.#selector,
      })).items;
    } catch (error) {
      throw apiError(error, "list Jobs", this.#where());
    }
    for (const job of jobs) {
      const name = job.metadata?.name;
      const finished = job.status?.conditions?.some((c) =>
        (c.type === "Complete" || c.type === "Failed") && c.status === "True"
      );
      if (!name || finished || job.metadata?.deletionTimestamp) continue;
      let map: RunMap;
      try {
        map = await readJson<RunMap>(this.#ctx.job.storage, this.#ctx.job.layout.run(name));
      } catch {
        continue; // not this storage's job, or its map is gone
      }
      const done = new Set([
        ...parseIndexes(job.status?.completedIndexes),
        ...parseIndexes(job.status?.failedIndexes),
      ]);
      const slots = this.#register(name, map.attempts);
      const place = parseSplitAnnotation(job.metadata?.annotations?.[SPLIT_ANNOTATION]);
      if (place) {
        const group = this.#groups.get(place.group) ??
          { parallelism: place.parallelism, jobs: [], current: [] };
        group.jobs[place.position] = name;
        group.current[place.position] = job.spec?.parallelism ?? 0;
        this.#groups.set(place.group, group);
        this.#groupOf.set(name, place.group);
      }
      for (const slot of slots) {
        if (done.has(slot.index)) {
          slot.ended = true;
          this.#remaining.set(name, this.#remaining.get(name)! - 1);
          continue;
        }
        this.#emit(slot, {
          type: "waiting",
          detail: `attached to the running Kubernetes Job ${name}`,
        });
      }
    }
    for (const name of this.#groups.keys()) this.#rebalance(name);
  }

  #register(batch: string, attempts: readonly AttemptSpec[]): Slot[] {
    const slots = attempts.map((spec, index): Slot => ({
      spec,
      batch,
      index,
      ended: false,
      failedPods: new Set(),
      failures: 0,
    }));
    this.#batches.set(batch, slots);
    this.#remaining.set(batch, slots.length);
    for (const slot of slots) this.#slots.set(slot.spec.attempt, slot);
    return slots;
  }

  async #watch(): Promise<void> {
    const ns = this.#ctx.namespace;
    const kc = this.#ctx.kubeConfig;
    const pods = watchPods(kc, ns, this.#selector);
    for (const event of ["add", "update"] as const) {
      pods.on(event, (pod) => {
        this.#onPod(pod, false);
        slim(pod);
      });
    }
    pods.on("delete", (pod) => this.#onPod(pod, true));
    const jobs = watchJobs(kc, ns, this.#selector);
    jobs.on("add", (job) => this.#onJob(job, false));
    jobs.on("update", (job) => this.#onJob(job, false));
    jobs.on("delete", (job) => this.#onJob(job, true));
    for (const informer of [pods, jobs] as Informer<V1Pod | V1Job>[]) {
      keepWatching(informer, () => this.#closed);
      this.#informers.push(informer);
      try {
        await informer.start();
      } catch (error) {
        throw apiError(error, "watch pods and Jobs", this.#where());
      }
    }
  }

  #slotOf(labels: Record<string, string> | undefined, index: number): Slot | undefined {
    const batch = labels?.[RUN_LABEL];
    return batch === undefined ? undefined : this.#batches.get(batch)?.[index];
  }

  #onPod(pod: V1Pod, deleted: boolean): void {
    const labels = pod.metadata?.labels;
    const index = Number(labels?.[INDEX_LABEL] ?? pod.metadata?.annotations?.[INDEX_LABEL]);
    const slot = this.#slotOf(labels, index);
    if (!slot || slot.ended || this.#closed) return;
    const name = pod.metadata?.name ?? "?";
    const uid = pod.metadata?.uid ?? name;
    const state = explainPod(pod);
    switch (state.phase) {
      case "pending":
        if (deleted) return;
        if (state.blocker) {
          slot.blockedSince ??= Date.now();
          slot.blocker = state.blocker;
        } else slot.blockedSince = undefined;
        if (state.blocker === "config") {
          return this.#end(slot, "unstartable", undefined, state.detail);
        }
        if (state.detail !== slot.lastDetail) {
          this.#emit(slot, { type: "waiting", detail: state.detail });
        }
        slot.lastDetail = state.detail;
        return;
      case "running":
        slot.blockedSince = undefined;
        if (deleted) {
          slot.podDeleted = true;
          if (this.#endIfDeletedAndFailed(slot)) return;
          this.#emit(slot, {
            type: "waiting",
            detail: `pod ${name} was deleted; Kubernetes replaces it`,
          });
        } else if (slot.runningPod !== uid) {
          slot.runningPod = uid;
          this.#ctx.onEvent({
            type: "started",
            task: slot.spec.task,
            attempt: slot.spec.attempt,
            at: new Date(),
            host: name,
          });
        }
        return;
      case "succeeded":
        this.#roomSeenAt = Date.now();
        return this.#end(slot, "exited", 0, `pod ${name} ${state.detail}`);
      case "failed": {
        if (slot.failedPods.has(uid)) return;
        slot.failedPods.add(uid);
        if (state.exitCode === EXIT_TASK_ERROR) {
          return this.#end(slot, "exited", EXIT_TASK_ERROR, `pod ${name} ${state.detail}`);
        }
        if (state.disrupted) {
          // Its index is failed (job_spec.ts); the master runs the task again in a new Job.
          return this.#end(
            slot,
            "disrupted",
            state.exitCode,
            `pod ${name} ${state.detail}; run again in a new Kubernetes Job (not counted)`,
          );
        }
        slot.failures++;
        slot.lastFailure = state;
        if (slot.failures > this.#ctx.job.maxRetries) return this.#endFailed(slot, name);
        this.#emit(slot, {
          type: "waiting",
          detail:
            `pod ${name} ${state.detail}; Kubernetes starts it again (failure ${slot.failures} of ${
              this.#ctx.job.maxRetries + 1
            } allowed)`,
        });
      }
    }
  }

  #onJob(job: V1Job, deleted: boolean): void {
    const name = job.metadata?.name;
    const slots = name ? this.#batches.get(name) : undefined;
    if (!slots || this.#closed) return;
    const completed = parseIndexes(job.status?.completedIndexes);
    const failed = parseIndexes(job.status?.failedIndexes);
    const failure = job.status?.conditions?.find((c) => c.type === "Failed" && c.status === "True");
    for (const slot of slots) {
      if (slot.ended) continue;
      if (completed.has(slot.index)) this.#end(slot, "exited", 0, "its index completed");
      else if (failed.has(slot.index)) {
        slot.indexFailedAt ??= Date.now();
        this.#endIfDeletedAndFailed(slot);
      } else if (failure) {
        this.#end(
          slot,
          "lost",
          undefined,
          `the Kubernetes Job ${name} failed: ${failure.message ?? failure.reason}`,
        );
      } else if (deleted) {
        this.#end(slot, "lost", undefined, `the Kubernetes Job ${name} was deleted`);
      }
    }
  }

  #endFailed(slot: Slot, pod: string): void {
    const last = slot.lastFailure;
    const reason: ExitReason = last?.oom
      ? "oom"
      : last?.deadline
      ? "timeout"
      : last?.exitCode !== undefined && last.exitCode >= 128
      ? "killed"
      : last?.exitCode !== undefined
      ? "exited"
      : "lost";
    this.#end(
      slot,
      reason,
      last?.exitCode,
      `pod ${pod} ${last?.detail ?? "failed"}`,
      Math.max(1, slot.failures),
    );
  }

  #end(
    slot: Slot,
    reason: ExitReason,
    exitCode: number | undefined,
    detail: string,
    crashes?: number,
  ) {
    if (slot.ended) return;
    slot.ended = true;
    this.#remaining.set(slot.batch, (this.#remaining.get(slot.batch) ?? 1) - 1);
    const group = this.#groupOf.get(slot.batch);
    if (group) this.#rebalance(group);
    this.#ctx.onEvent({
      type: "exited",
      task: slot.spec.task,
      attempt: slot.spec.attempt,
      at: new Date(),
      reason,
      exitCode,
      detail,
      ...(crashes !== undefined ? { crashes } : {}),
    });
  }

  #emit(slot: Slot, event: { type: "waiting"; detail: string }): void {
    this.#ctx.onEvent({
      ...event,
      task: slot.spec.task,
      attempt: slot.spec.attempt,
      at: new Date(),
    });
  }

  /**
   * Every second: retry failed parallelism raises, fail attempts blocked too long, ask for the
   * pods of failed indexes no pod explained.
   */
  #tick(): void {
    for (const [name, group] of this.#groups) {
      if (!group.retry) continue;
      group.retry = false;
      this.#rebalance(name);
    }
    this.#checkBlocked();
    this.#checkFailedIndexes();
  }

  /** Ask for the pods of the indexes the Job failed {@link INDEX_FAILURE_WAIT_MS} ago, no pod saying why. */
  #checkFailedIndexes(): void {
    const now = Date.now();
    for (const slot of this.#slots.values()) {
      if (this.#questions >= MAX_INDEX_QUESTIONS) return;
      if (slot.ended || slot.asking || slot.indexFailedAt === undefined) continue;
      if (now - slot.indexFailedAt < INDEX_FAILURE_WAIT_MS) continue;
      void this.#askIndex(slot);
    }
  }

  /**
   * Decide a failed index from its pods, as the apiserver has them now (one list, only when the
   * pod watch said nothing in time): a failed pod ends the attempt as its failure says; no pod at
   * all means it was deleted as it ran (an eviction, a lost node), a disruption; a pod still
   * running or being deleted, or a failure the apiserver cannot be asked about, waits again.
   */
  async #askIndex(slot: Slot): Promise<void> {
    slot.asking = true;
    this.#questions++;
    let pods: V1Pod[] | undefined;
    try {
      pods = (await this.#core.listNamespacedPod({
        namespace: this.#ctx.namespace,
        labelSelector: `${RUN_LABEL}=${slot.batch},${INDEX_LABEL}=${slot.index}`,
      })).items;
    } catch {
      // Asked again after the next wait.
    } finally {
      slot.asking = false;
      this.#questions--;
      slot.indexFailedAt = Date.now();
    }
    if (!pods || slot.ended || this.#closed) return;
    for (const pod of pods) this.#onPod(pod, false);
    if (slot.ended) return;
    if (pods.length === 0) {
      return this.#end(
        slot,
        "disrupted",
        undefined,
        "its pod was deleted as it ran (Kubernetes failed its index and the apiserver has no pod of it); run again in a new Kubernetes Job (not counted)",
      );
    }
    const phases = pods.map((pod) => pod.status?.phase);
    if (phases.every((phase) => phase === "Failed" || phase === "Succeeded")) {
      // Failures already counted, none over the limit, yet Kubernetes failed the index.
      this.#endFailed(slot, pods.at(-1)?.metadata?.name ?? "of the index");
    }
  }

  /**
   * End an attempt whose index failed and whose pod was deleted as it ran, its end unseen (a new
   * list after a watch ended), with no failure of its own seen: stopped from outside — an
   * eviction, a drain, a lost node. Whichever of the two news comes last decides.
   *
   * @returns Whether the attempt ended.
   */
  #endIfDeletedAndFailed(slot: Slot): boolean {
    if (!slot.podDeleted || slot.indexFailedAt === undefined || slot.lastFailure) return false;
    this.#end(
      slot,
      "disrupted",
      undefined,
      "its pod was deleted as it ran and Kubernetes failed its index; run again in a new Kubernetes Job (not counted)",
    );
    return true;
  }

  /**
   * Fail attempts that could not start for longer than allowed. The pods of a job are alike: one
   * the scheduler finds no room for while another runs (or just succeeded) waits its turn behind
   * it, as when the parallelism is wider than the cluster; its wait counts from the last time the
   * session saw one of its pods running.
   */
  #checkBlocked(): void {
    const limit = this.#ctx.options.unstartableTimeoutMs ??
      KUBERNETES_DEFAULTS.unstartableTimeoutMs;
    const now = Date.now();
    if (this.#slots.values().some((s) => !s.ended && s.runningPod !== undefined)) {
      this.#roomSeenAt = now;
    }
    for (const slot of this.#slots.values()) {
      if (slot.ended || slot.blockedSince === undefined) continue;
      const queued = slot.blocker === "unschedulable";
      const since = queued ? Math.max(slot.blockedSince, this.#roomSeenAt) : slot.blockedSince;
      if (now - since < limit) continue;
      this.#end(
        slot,
        "unstartable",
        undefined,
        `${slot.lastDetail ?? "cannot start"} (for ${Math.round((now - since) / 1000)} s${
          queued ? " with no pod of the job running" : ""
        })`,
      );
    }
  }

  async submit(attempts: readonly AttemptSpec[]): Promise<void> {
    if (attempts.length === 0) return;
    const max = this.#ctx.options.maxCompletionsPerJob ?? MAX_COMPLETIONS_PER_JOB;
    const chunks = splitAttempts(attempts, max);
    if (chunks.length === 1) return await this.#createJob(batchName(this.#ctx.job.key), attempts);
    // Too wide for one Indexed Job: one Job per chunk, sharing the parallelism (see split.ts).
    const parallelism = this.#ctx.job.parallelism;
    const names = chunks.map(() => batchName(this.#ctx.job.key));
    const group: SplitGroup = {
      parallelism,
      jobs: names,
      current: shareParallelism(parallelism, chunks.map((chunk) => chunk.length)),
    };
    this.#groups.set(names[0]!, group);
    for (const [position, chunk] of chunks.entries()) {
      const name = names[position]!;
      this.#groupOf.set(name, names[0]!);
      await this.#createJob(name, chunk, {
        parallelism: group.current[position]!,
        split: splitAnnotation({ group: names[0]!, position, parallelism }),
      });
    }
    try {
      // The shares are raised later: check now that the user may (docs/rbac.yaml, verb patch).
      await this.#patchParallelism(names[1]!, group.current[1]!, "All");
    } catch (error) {
      // Without patch the later Jobs would never run: forget the group and delete its Jobs, so
      // nothing is left and their deletion is no news (the caller gets the error, not lost tasks).
      this.#groups.delete(names[0]!);
      for (const [position, name] of names.entries()) {
        this.#forget(name, chunks[position]!);
        await this.#deleteJob(name);
      }
      throw apiError(error, "patch Jobs", this.#where());
    }
  }

  /** Create one Kubernetes Job for `attempts`, after writing its run map. */
  async #createJob(
    name: string,
    attempts: readonly AttemptSpec[],
    split?: { parallelism: number; split: string },
  ): Promise<void> {
    const body = jobSpec({
      job: this.#ctx.job,
      options: this.#ctx.options,
      namespace: this.#ctx.namespace,
      name,
      completions: attempts.length,
      runtime: this.#ctx.runtime,
    });
    if (split) {
      body.spec!.parallelism = split.parallelism;
      body.metadata = {
        ...body.metadata,
        annotations: { ...body.metadata?.annotations, [SPLIT_ANNOTATION]: split.split },
      };
    }
    const namespace = this.#ctx.namespace;
    if (!this.#validated) {
      // Let the API server check the Job (and our permission) before anything is written.
      try {
        await this.#batch.createNamespacedJob({ namespace, body, dryRun: "All" });
      } catch (error) {
        throw apiError(error, "create Jobs", this.#where());
      }
      this.#validated = true;
    }
    await writeJson(
      this.#ctx.job.storage,
      this.#ctx.job.layout.run(name),
      { attempts: [...attempts] } satisfies RunMap,
    );
    // Checked, registered and begun in one step: `close` waits for what passed this check.
    if (this.#closing) throw new Error("Cannot start attempts: the Kubernetes session is closed");
    this.#register(name, attempts);
    const creating = this.#batch.createNamespacedJob({ namespace, body });
    this.#creating.add(creating);
    try {
      await creating;
    } catch (error) {
      this.#forget(name, attempts);
      throw apiError(error, "create Jobs", this.#where());
    } finally {
      this.#creating.delete(creating);
    }
  }

  /** Drop a batch that has no Job (its creation failed, or it was deleted as it failed). */
  #forget(name: string, attempts: readonly AttemptSpec[]): void {
    this.#batches.delete(name);
    this.#remaining.delete(name);
    this.#groupOf.delete(name);
    for (const spec of attempts) this.#slots.delete(spec.attempt);
  }

  /**
   * Give the Jobs of a split group their share of its parallelism again, as
   * earlier Jobs run out of indexes. A share is raised once it grew by a
   * tenth of the parallelism, or to all a Job has left; never lowered (a Job
   * runs at most as many pods as it has indexes left, so the sum stays
   * within the parallelism).
   */
  #rebalance(name: string): void {
    const group = this.#groups.get(name);
    if (!group || this.#closed) return;
    const remaining = group.jobs.map((job) => (job ? this.#remaining.get(job) ?? 0 : 0));
    const wanted = shareParallelism(group.parallelism, remaining);
    const step = Math.max(1, Math.ceil(group.parallelism / 10));
    for (const [position, job] of group.jobs.entries()) {
      const want = wanted[position]!;
      const now = group.current[position] ?? 0;
      if (!job || want <= now || (want - now < step && want < remaining[position]!)) continue;
      group.current[position] = want;
      // A failed raise leaves the Job slower, never wrong; the next tick tries again. Its waiting
      // tasks say why: with all earlier Jobs done, no slot end would ever raise it.
      this.#patchParallelism(job, want).catch((error) => {
        group.current[position] = now;
        if (this.#closed) return;
        group.retry = true;
        const why = apiError(error, `raise the parallelism of Job ${job}`, this.#where());
        const detail = `Kubernetes Job ${job} runs ${now} pods at once until kubeface can ` +
          `raise it to ${want} (retrying every second): ${why.message}`;
        for (const slot of this.#batches.get(job) ?? []) {
          if (!slot.ended && slot.runningPod === undefined && slot.lastDetail !== detail) {
            slot.lastDetail = detail;
            this.#emit(slot, { type: "waiting", detail });
          }
        }
      });
    }
  }

  /** Set a Job's parallelism (`dryRun: "All"` only checks that the user may). */
  async #patchParallelism(name: string, parallelism: number, dryRun?: "All"): Promise<void> {
    await this.#batch.patchNamespacedJob(
      {
        name,
        namespace: this.#ctx.namespace,
        body: { spec: { parallelism } },
        ...(dryRun ? { dryRun } : {}),
      },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    );
  }

  async cancel(attempts: readonly string[]): Promise<void> {
    const byBatch = new Map<string, Slot[]>();
    for (const id of attempts) {
      const slot = this.#slots.get(id);
      if (!slot || slot.ended) continue;
      this.#end(slot, "cancelled", undefined, "stopped by kubeface");
      byBatch.set(slot.batch, [...(byBatch.get(slot.batch) ?? []), slot]);
    }
    for (const [batch, slots] of byBatch) {
      if (this.#batches.get(batch)!.every((s) => s.ended)) await this.#deleteJob(batch);
      else {
        // Kubernetes cannot stop one index; the replacement pod sees the
        // task's result and ends at once.
        for (const slot of slots) {
          await this.#core.deleteCollectionNamespacedPod({
            namespace: this.#ctx.namespace,
            labelSelector: `${RUN_LABEL}=${batch},${INDEX_LABEL}=${slot.index}`,
          }).catch(() => {});
        }
      }
    }
  }

  async #deleteJob(name: string): Promise<void> {
    for (let attempt = 0;; attempt++) {
      try {
        await this.#batch.deleteNamespacedJob({
          name,
          namespace: this.#ctx.namespace,
          propagationPolicy: "Background",
        });
        return;
      } catch (error) {
        // Already gone (its TTL, or a user); after five failures its TTL removes it.
        if ((error as { code?: number }).code === 404 || attempt >= 4) return;
        await new Promise((resolve) => setTimeout(resolve, 250 * 2 ** attempt));
      }
    }
  }

  async close(options: { stopRunning?: boolean } = {}): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    // A Job still being created is deleted with the others, not left behind.
    await Promise.allSettled(this.#creating);
    if (options.stopRunning ?? true) {
      for (const [batch, slots] of this.#batches) {
        if (slots.some((s) => !s.ended)) {
          for (const slot of slots) this.#end(slot, "cancelled", undefined, "stopped by kubeface");
          await this.#deleteJob(batch);
        }
      }
    }
    this.#closed = true;
    clearInterval(this.#timer);
    for (const informer of this.#informers) await informer.stop().catch(() => {});
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
