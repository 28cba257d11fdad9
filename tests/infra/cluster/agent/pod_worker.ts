// deno-lint-ignore-file no-console
/**
 * The life of one pod bound to the node: run its init containers, then its containers, as
 * local processes; report Pending → Running → Succeeded/Failed; enforce memory limits and
 * `activeDeadlineSeconds`; honour graceful deletion; restart only as `restartPolicy` says.
 *
 * @module
 */

import type { CoreV1Api, V1Container, V1Pod } from "@kubernetes/client-node";
import { resolveArgv, StartError } from "./command.ts";
import { ContainerProcess } from "./container_process.ts";
import { ContainerConfigError, containerEnv, type EnvSources } from "./env.ts";
import type { MemoryWatcher } from "./memory_watcher.ts";
import {
  Conditions,
  type ContainerState,
  podStatusPatch,
  terminatedReason,
  type TerminatedState,
} from "./pod_status.ts";
import { parseQuantity } from "./quantity.ts";
import { StatusWriter } from "./status_writer.ts";

/** What every pod worker shares. */
export interface PodWorkerContext {
  core: CoreV1Api;
  /** Pods get `<stateDir>/pods/<uid>/` for temp files, logs and pids. */
  stateDir: string;
  /** The local `deno`, which `deno` commands and the `denoland/deno` image run. */
  denoPath: string;
  /** ConfigMaps, Secrets and node facts for env values. */
  envSources: EnvSources;
  /** Variables every container starts with (PATH, KUBERNETES_SERVICE_HOST, …). */
  baseEnv: Record<string, string>;
  memory: MemoryWatcher;
}

/** Where the log server finds a container's output. */
export interface ContainerLogs {
  /** The log file of the current (or last) run, if it ever started. */
  current?: string;
  /** The log file of the run before, if it was restarted. */
  previous?: string;
  running: boolean;
  /** Why it is not running yet, when it never ran. */
  waiting?: string;
}

interface Slot {
  spec: V1Container;
  init: boolean;
  restartCount: number;
  state: ContainerState;
  lastState?: TerminatedState;
  process?: ContainerProcess;
  oomKilled: boolean;
  logFiles: string[];
}

type Phase = "Pending" | "Running" | "Succeeded" | "Failed";

/** Why the containers are being stopped, and how long SIGTERM may take before SIGKILL. */
interface Stopping {
  reason: "deleted" | "deadline" | "removed";
  graceSeconds: number;
}

const BACKOFF_START_MS = 10_000;
const BACKOFF_MAX_MS = 300_000;

/** Runs one pod; created by the node agent when it first sees the pod bound to its node. */
export class PodWorker {
  readonly uid: string;
  readonly namespace: string;
  readonly name: string;
  #pod: V1Pod;
  readonly #context: PodWorkerContext;
  readonly #dir: string;
  readonly #init: Slot[];
  readonly #main: Slot[];
  #phase: Phase = "Pending";
  #reason: string | undefined;
  #message: string | undefined;
  #startTime: Date | undefined;
  #allStarted = false;
  #stopping: Stopping | undefined;
  #wakeUp: () => void = () => {};
  #stopped: Promise<void>;
  #done: Promise<void> = Promise.resolve();
  #deleting = false;
  readonly #conditions = new Conditions();
  readonly #writer: StatusWriter;

  /**
   * Start working on a pod.
   *
   * @param pod The pod as first seen.
   * @param context Shared API client, directories and node facts.
   */
  constructor(pod: V1Pod, context: PodWorkerContext) {
    this.#pod = pod;
    this.#context = context;
    this.uid = pod.metadata?.uid ?? "";
    this.namespace = pod.metadata?.namespace ?? "";
    this.name = pod.metadata?.name ?? "";
    this.#dir = `${context.stateDir}/pods/${this.uid}`;
    this.#writer = new StatusWriter({
      core: context.core,
      namespace: this.namespace,
      name: this.name,
      build: () => this.#statusPatch(),
      log: (line) => this.#log(line),
    });
    const slot = (spec: V1Container, init: boolean): Slot => ({
      spec,
      init,
      restartCount: 0,
      state: { kind: "waiting", reason: init ? "PodInitializing" : "ContainerCreating" },
      oomKilled: false,
      logFiles: [],
    });
    this.#init = (pod.spec?.initContainers ?? []).map((spec) => slot(spec, true));
    this.#main = (pod.spec?.containers ?? []).map((spec) => slot(spec, false));
    this.#stopped = new Promise((resolve) => (this.#wakeUp = resolve));
    const phase = pod.status?.phase;
    if (phase === "Succeeded" || phase === "Failed") {
      this.#phase = phase; // finished before this agent started: nothing to run
    } else if (startedElsewhere(pod)) {
      this.#done = this.#reportLost();
    } else {
      this.#done = this.#run().catch((error) =>
        this.#log(`worker failed: ${error?.stack ?? error}`)
      );
    }
    this.observe(pod);
  }

  /**
   * Take note of a newer version of the pod (from the watch).
   *
   * @param pod The pod.
   */
  observe(pod: V1Pod): void {
    this.#pod = pod;
    if (pod.metadata?.deletionTimestamp && !this.#deleting) {
      this.#deleting = true;
      void this.#delete().catch((error) => this.#log(`deletion failed: ${error?.stack ?? error}`));
    }
  }

  /** The pod is gone from the API (deleted with grace 0 or force-deleted): kill what is left. */
  async remove(): Promise<void> {
    this.#writer.stop();
    this.#stop({ reason: "removed", graceSeconds: 0 });
    await this.#done;
    await Deno.remove(this.#dir, { recursive: true }).catch(() => {});
  }

  /** Kill every process at once (the agent is shutting down); no status is written. */
  async kill(): Promise<void> {
    await this.remove();
  }

  /**
   * Where to read a container's log.
   *
   * @param container The container name.
   * @returns The log files, or `undefined` for an unknown container.
   */
  logs(container: string): ContainerLogs | undefined {
    const slot = [...this.#init, ...this.#main].find((candidate) =>
      candidate.spec.name === container
    );
    if (!slot) return undefined;
    return {
      current: slot.logFiles.at(-1),
      previous: slot.logFiles.at(-2),
      running: slot.state.kind === "running",
      waiting: slot.state.kind === "waiting"
        ? `container "${container}" in pod "${this.name}" is waiting to start: ${slot.state.reason}`
        : undefined,
    };
  }

  async #run(): Promise<void> {
    await Deno.mkdir(`${this.#dir}/tmp`, { recursive: true });
    await Deno.mkdir(`${this.#dir}/logs`, { recursive: true });
    this.#startTime = new Date();
    const deadline = this.#pod.spec?.activeDeadlineSeconds;
    const timer = deadline === undefined ? undefined : setTimeout(() => {
      this.#log(`active deadline of ${deadline} s exceeded`);
      this.#stop({ reason: "deadline", graceSeconds: this.#terminationGrace() });
    }, deadline * 1000);
    void this.#writer.report();
    let initialized = true;
    for (const slot of this.#init) {
      if (!(await this.#supervise(slot))) {
        initialized = false;
        break;
      }
    }
    if (initialized) await Promise.all(this.#main.map((slot) => this.#supervise(slot)));
    clearTimeout(timer);
    for (const slot of [...this.#init, ...this.#main]) {
      if (slot.state.kind === "waiting" && (initialized || slot.init) && this.#stopping) {
        slot.state = {
          kind: "terminated",
          exitCode: 137,
          reason: "ContainerStatusUnknown",
          message: "The container could not be located when the pod was terminated",
          finishedAt: new Date(),
        };
      }
    }
    this.#finish(initialized);
    await this.#writer.report();
  }

  /** Run a container until it needs no restart; `true` when its last run exited 0. */
  async #supervise(slot: Slot): Promise<boolean> {
    while (true) {
      if (this.#stopping) return false;
      try {
        await this.#runOnce(slot);
      } catch (error) {
        // Like the kubelet: report the container as waiting and try again a little later.
        const config = error instanceof ContainerConfigError;
        const message = error instanceof Error ? error.message : String(error);
        if (!config) this.#log(`cannot create container ${slot.spec.name}: ${message}`);
        slot.state = {
          kind: "waiting",
          reason: config ? "CreateContainerConfigError" : "CreateContainerError",
          message,
        };
        void this.#writer.report();
        await this.#sleep(5_000);
        continue;
      }
      const ended = slot.state as TerminatedState;
      void this.#writer.report();
      const policy = this.#pod.spec?.restartPolicy ?? "Always";
      const failed = ended.exitCode !== 0;
      const again = !this.#stopping &&
        (policy === "Always" ? failed || !slot.init : policy === "OnFailure" && failed);
      if (!again) return !failed;
      const backoff = Math.min(BACKOFF_START_MS * 2 ** slot.restartCount, BACKOFF_MAX_MS);
      slot.lastState = ended;
      slot.restartCount += 1;
      slot.state = {
        kind: "waiting",
        reason: "CrashLoopBackOff",
        message: `back-off ${
          backoff / 1000
        }s restarting failed container=${slot.spec.name} pod=${this.name}`,
      };
      void this.#writer.report();
      await this.#sleep(backoff);
    }
  }

  /** Start one run of a container and wait for it; leaves a terminated state in the slot. */
  async #runOnce(slot: Slot): Promise<void> {
    const { baseEnv, denoPath, envSources, memory } = this.#context;
    const tmp = `${this.#dir}/tmp`;
    const base = { ...baseEnv, HOSTNAME: this.name, HOME: tmp, TMPDIR: tmp };
    const env = { ...base, ...(await containerEnv(this.#pod, slot.spec, envSources, base)) };
    const containerID = `kubeface://${this.uid}/${slot.spec.name}/${slot.restartCount}`;
    let argv: { program: string; args: string[] };
    try {
      argv = resolveArgv(slot.spec, env, denoPath);
    } catch (error) {
      if (!(error instanceof StartError)) throw error;
      slot.state = {
        kind: "terminated",
        exitCode: 128,
        reason: "StartError",
        message: error.message,
        finishedAt: new Date(),
        containerID,
      };
      return;
    }
    const logFile = `${this.#dir}/logs/${slot.spec.name}-${slot.restartCount}.log`;
    await Deno.writeTextFile(logFile, "");
    slot.logFiles.push(logFile);
    const process = await ContainerProcess.start({
      ...argv,
      env,
      cwd: await existingDir(slot.spec.workingDir) ?? tmp,
      logFile,
      pidFile: `${this.#dir}/${slot.spec.name}.pid`,
    });
    slot.process = process;
    slot.oomKilled = false;
    slot.state = { kind: "running", startedAt: process.startedAt };
    this.#allStarted ||= this.#main.every((s) => s.state.kind !== "waiting");
    const limit = slot.spec.resources?.limits?.memory;
    const unwatch = limit === undefined
      ? () => {}
      : memory.watch(process.pid, parseQuantity(limit), (rss) => {
        this.#log(
          `container ${slot.spec.name} uses ${rss} bytes, over its limit ${limit}: killing it`,
        );
        slot.oomKilled = true;
        process.kill("SIGKILL");
      });
    if (this.#stopping) void process.stop(this.#stopping.graceSeconds);
    void this.#writer.report();
    const exit = await process.exited;
    unwatch();
    slot.process = undefined;
    slot.state = {
      kind: "terminated",
      exitCode: exit.exitCode,
      reason: terminatedReason(exit.exitCode, slot.oomKilled),
      signal: undefined,
      startedAt: process.startedAt,
      finishedAt: exit.finishedAt,
      containerID,
    };
  }

  /** Set the final phase once no container runs any more. */
  #finish(initialized: boolean): void {
    if (this.#stopping?.reason === "deadline") {
      this.#phase = "Failed";
      this.#reason = "DeadlineExceeded";
      this.#message = "Pod was active on the node longer than the specified deadline";
      return;
    }
    const slots = initialized ? this.#main : this.#init;
    const failed = !initialized ||
      slots.some((slot) => slot.state.kind !== "terminated" || slot.state.exitCode !== 0);
    this.#phase = failed ? "Failed" : "Succeeded";
  }

  /** SIGTERM every running container (SIGKILL after the grace period) and stop restarting. */
  #stop(how: Stopping): void {
    if (this.#stopping && how.reason !== "removed") return;
    this.#stopping = how;
    this.#wakeUp();
    for (const slot of [...this.#init, ...this.#main]) {
      void slot.process?.stop(how.graceSeconds);
    }
  }

  /** Graceful deletion: stop, write the final status, then delete the pod with grace 0. */
  async #delete(): Promise<void> {
    const grace = this.#pod.metadata?.deletionGracePeriodSeconds ?? this.#terminationGrace();
    this.#log(`deletion requested (grace ${grace} s)`);
    this.#stop({ reason: "deleted", graceSeconds: grace });
    await this.#done;
    await this.#writer.settled();
    if (this.#writer.gone) return;
    try {
      await this.#context.core.deleteNamespacedPod({
        name: this.name,
        namespace: this.namespace,
        gracePeriodSeconds: 0,
        body: { gracePeriodSeconds: 0, preconditions: { uid: this.uid } },
      });
      this.#log("deleted");
    } catch (error) {
      const code = (error as { code?: number }).code;
      if (code !== 404 && code !== 409) throw error;
    }
  }

  /** The pod ran under an earlier agent whose processes are gone. */
  async #reportLost(): Promise<void> {
    this.#startTime = this.#pod.status?.startTime
      ? new Date(this.#pod.status.startTime)
      : new Date();
    for (const slot of [...this.#init, ...this.#main]) {
      slot.state = {
        kind: "terminated",
        exitCode: 137,
        reason: "ContainerStatusUnknown",
        message: "The container could not be located when the pod was terminated",
        finishedAt: new Date(),
      };
    }
    this.#allStarted = true;
    this.#phase = "Failed";
    await this.#writer.report();
  }

  #terminationGrace(): number {
    return this.#pod.spec?.terminationGracePeriodSeconds ?? 30;
  }

  /** Sleep, but wake up early when the pod is being stopped. */
  async #sleep(ms: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      this.#stopped,
      new Promise((resolve) => (timer = setTimeout(resolve, ms))),
    ]);
    clearTimeout(timer);
  }

  /** The strategic-merge patch of the pod status; the phase turns Running once all started. */
  #statusPatch(): Record<string, unknown> {
    const terminal = this.#phase === "Succeeded" || this.#phase === "Failed";
    if (!terminal && this.#allStarted) this.#phase = "Running";
    return podStatusPatch({
      uid: this.uid,
      phase: this.#phase,
      reason: this.#reason,
      message: this.#message,
      startTime: this.#startTime,
      hostIP: this.#context.envSources.hostIP,
      init: this.#init,
      main: this.#main,
    }, this.#conditions);
  }

  #log(line: string): void {
    console.error(`${new Date().toISOString()} pod ${this.namespace}/${this.name}: ${line}`);
  }
}

/** Whether an earlier agent already started this pod's containers. */
function startedElsewhere(pod: V1Pod): boolean {
  const statuses = [
    ...(pod.status?.initContainerStatuses ?? []),
    ...(pod.status?.containerStatuses ?? []),
  ];
  return pod.status?.phase === "Running" ||
    statuses.some((status) => status.state?.running || status.state?.terminated);
}

async function existingDir(path: string | undefined): Promise<string | undefined> {
  if (!path) return undefined;
  try {
    return (await Deno.stat(path)).isDirectory ? path : undefined;
  } catch {
    return undefined;
  }
}
