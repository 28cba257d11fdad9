/**
 * The container backend: every attempt runs on this machine, as with the
 * local backend, but inside its own container of the worker image (built
 * on first use, or with `deno task image:build`), started with `podman run`
 * or `docker run`. It
 * tests the image before it goes to a cluster, and isolates tasks from the
 * host: a task sees the image, its storage and the paths it was granted (see
 * `container_run.ts`).
 *
 * Each container is named `kubeface-<job>-<task>-<attempt>`, labelled
 * `kubeface.job=<job>`, and removed when it ends (`--rm`). Its output is
 * stored as `jobs/<key>/logs/<task>/<attempt>.log`. A container killed from
 * outside (`podman kill NAME`, the OOM killer) is a crash, retried by the
 * job; one stopped from outside (`podman stop NAME`: SIGTERM, then SIGKILL
 * after the job's grace period plus 5 s) was disrupted, and its task had
 * its signal and the grace period to checkpoint. `cancel` sends SIGTERM by
 * name the same way, and kills the container once the grace period passed.
 *
 * @module
 */

import { BackendError, errorMessage } from "../errors.ts";
import { defaultImage } from "../image/tag.ts";
import type { AttemptSpec, Backend, BackendEvent, BackendSession, JobContext } from "./backend.ts";
import { QueueSession, type Started } from "./queue.ts";
import {
  type ContainerCli,
  failed,
  findCli,
  forceRemoveArgs,
  imageExists,
  runCli,
} from "./container_cli.ts";
import { defaultUlimits, defaultUserArgs } from "./container_host.ts";
import { JOB_LABEL, runPlan, type RunSettings } from "./container_run.ts";
import { collectOutput, describeExit, killGrace, storeLog } from "./worker_process.ts";

/** Options of the container backend. */
export interface ContainerBackendOptions {
  /**
   * The container command line: `podman`, `docker`, or a path to one.
   *
   * @default {"podman" if found, else "docker"}
   */
  cli?: string;
  /**
   * Flags before every subcommand of the CLI, e.g. `["--runtime", "runc"]`
   * for podman where its default runtime (crun) cannot run containers.
   *
   * @default {[]}
   */
  cliArgs?: readonly string[];
  /**
   * The worker image. The default one is built when it is missing (once
   * per version of kubeface's sources, which its tag names).
   *
   * @default {"kubeface-worker:<version>-<hash of the worker's sources>", as `deno task image:build` tags it}
   */
  image?: string;
  /**
   * Extra flags for `run`, e.g. `["--memory=4g", "--cpus=2"]`.
   *
   * @default {[]}
   */
  runArgs?: readonly string[];
  /**
   * `--ulimit` values of every container, e.g. `["nofile=4096:4096"]`.
   *
   * @default {none if the CLI's own defaults work (checked once by starting the image), else ["nofile=1024:1024", "nproc=1024:1024"], which podman needs where it may not raise the limits}
   */
  ulimits?: readonly string[];
  /**
   * `--user` of every container.
   *
   * @default {the image's non-root user, mapped so it can write your storage: `--user UID:GID` with docker, `--userns=keep-id` with rootless podman, and the DAC_OVERRIDE capability when you are root}
   */
  user?: string;
  /**
   * `--network` of every container; `"host"` lets workers reach services on
   * this machine's loopback, like a storage emulator.
   *
   * @default {"host"}
   */
  network?: string;
  /**
   * Time a cancelled container gets to end after SIGTERM before it is
   * killed and removed, in milliseconds.
   *
   * @default {the job's grace period (`graceMs`) plus 5000, for the worker to store what the task left and exit}
   */
  killGraceMs?: number;
  /**
   * Called with a line of progress while the backend builds the missing
   * default worker image.
   *
   * @default {() => {}}
   */
  onProgress?: (line: string) => void;
}

/** The defaults that need no probing of this machine. */
const CONTAINER_DEFAULTS = {
  cliArgs: [] as readonly string[],
  runArgs: [] as readonly string[],
  network: "host",
};

type Resolved = ContainerBackendOptions & typeof CONTAINER_DEFAULTS;

/** What {@linkcode ContainerBackend} resolves once, before the first job. */
interface Prepared {
  cli: ContainerCli;
  settings: RunSettings;
}

/** Run attempts in containers of the worker image on this machine. */
export class ContainerBackend implements Backend {
  readonly name = "container";
  readonly #options: Resolved;
  #prepared: Promise<Prepared> | undefined;

  /**
   * Create the backend; nothing runs until a job opens it. See
   * {@linkcode ContainerBackendOptions} for the defaults.
   *
   * @throws {RangeError} `killGraceMs` is negative.
   */
  constructor(options: ContainerBackendOptions = {}) {
    if (options.killGraceMs !== undefined && !(options.killGraceMs >= 0)) {
      throw new RangeError(
        `Cannot use killGraceMs ${options.killGraceMs}: give milliseconds >= 0`,
      );
    }
    this.#options = { ...CONTAINER_DEFAULTS, ...options };
  }

  async open(job: JobContext, onEvent: (event: BackendEvent) => void): Promise<BackendSession> {
    const prepared = await this.#prepare();
    runPlan(job, { task: 0, attempt: "check" }, prepared.settings); // mounts must be possible
    return new ContainerSession(job, onEvent, prepared, this.#options.killGraceMs);
  }

  async cleanup(jobKey: string): Promise<string[]> {
    const { cli } = await this.#cli();
    const listed = await runCli(cli, [
      ...["ps", "--all", "--filter", `label=${JOB_LABEL}=${jobKey}`, "--format", "{{.Names}}"],
    ]);
    if (listed.code !== 0) throw failed(cli, "ps", listed.stderr);
    const names = listed.stdout.split("\n").map((s) => s.trim()).filter(Boolean);
    if (names.length === 0) return [];
    const removed = await runCli(cli, forceRemoveArgs(cli, names));
    if (removed.code !== 0) throw failed(cli, "rm", removed.stderr);
    return names.map((name) => `removed container ${name}`);
  }

  async #cli(): Promise<{ cli: ContainerCli }> {
    const command = await findCli(this.#options.cli);
    return { cli: { command, globalArgs: this.#options.cliArgs } };
  }

  #prepare(): Promise<Prepared> {
    this.#prepared ??= this.#resolve().catch((error) => {
      this.#prepared = undefined; // a later job may try again, e.g. after a build
      throw error;
    });
    return this.#prepared;
  }

  /** Build the default worker image, which is missing. */
  async #build(cli: ContainerCli, image: string): Promise<void> {
    const onProgress = this.#options.onProgress ?? (() => {});
    onProgress(
      `building the worker image ${image} with ${cli.command} (once for these kubeface sources; it takes a minute or two)…`,
    );
    const { buildImage } = await import("../image/build.ts");
    try {
      await buildImage({ cli: cli.command, cliArgs: cli.globalArgs, image, onProgress });
    } catch (error) {
      throw new BackendError(
        `Cannot run containers: the worker image '${image}' is missing and building it failed: ${
          errorMessage(error)
        }`,
        { cause: error },
      );
    }
  }

  async #resolve(): Promise<Prepared> {
    const { cli } = await this.#cli();
    const options = this.#options;
    const image = options.image ?? defaultImage();
    if (!await imageExists(cli, image)) {
      if (options.image !== undefined) {
        throw new BackendError(
          `Cannot run containers: the image '${image}' is not in ${cli.command}'s image store; build or pull it first, or leave --image out to use kubeface's worker image (built on first use)`,
        );
      }
      await this.#build(cli, image);
    }
    return {
      cli,
      settings: {
        image,
        network: options.network,
        userArgs: options.user !== undefined
          ? ["--user", options.user]
          : defaultUserArgs(cli.command),
        ulimits: options.ulimits ?? await defaultUlimits(cli, image),
        runArgs: options.runArgs,
      },
    };
  }
}

/** Run each attempt in its own container. */
class ContainerSession extends QueueSession {
  constructor(
    job: JobContext,
    onEvent: (event: BackendEvent) => void,
    readonly prepared: Prepared,
    readonly killGraceMs: number | undefined,
  ) {
    super(job, onEvent);
  }

  protected start(spec: AttemptSpec): Started | undefined {
    const { cli, settings } = this.prepared;
    let child: Deno.ChildProcess;
    let name: string;
    try {
      const plan = runPlan(this.job, spec, settings);
      name = plan.name;
      child = new Deno.Command(cli.command, {
        args: [...cli.globalArgs, ...plan.args],
        env: plan.env,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
    } catch (error) {
      const detail = error instanceof Deno.errors.NotFound
        ? `cannot start '${cli.command}': it was not found`
        : `cannot start the container: ${errorMessage(error)}`;
      this.report(spec, "unstartable", undefined, detail);
      return undefined;
    }
    let cancelled = false;
    let ended = false;
    this.started(spec, name);
    const done = (async () => {
      const logPath = await Deno.makeTempFile({ prefix: "kubeface-container-", suffix: ".log" });
      const { status, stderrTail } = await collectOutput(child, logPath);
      ended = true;
      await storeLog(
        this.job.storage,
        this.job.layout.log(spec.task, spec.attempt),
        { path: logPath },
        status.success,
      );
      if (cancelled) return this.ended(spec, "cancelled", status.code, "stopped by kubeface");
      const { reason, detail } = describeExit({ code: status.code }, stderrTail, cli.command);
      this.ended(spec, reason, status.code, detail);
    })();
    /**
     * SIGTERM by name (the task sees its signal) until the CLI process ends;
     * after the grace time, kill and remove by force.
     */
    const stop = async () => {
      const deadline = Date.now() + killGrace(this.job, this.killGraceMs);
      let sentAt = -Infinity;
      while (!ended && Date.now() < deadline) {
        // Sent again every 2 s: it fails while the container is being created, and
        // the worker, its PID 1, ignores it until it has set up its handler.
        if (Date.now() - sentAt >= 2000) {
          sentAt = Date.now();
          await runCli(cli, ["kill", "--signal", "TERM", name]).catch(() => {});
        }
        await Promise.race([done, new Promise((r) => setTimeout(r, 200))]);
      }
      if (!ended) {
        try {
          child.kill("SIGKILL");
        } catch { /* already gone */ }
        await runCli(cli, forceRemoveArgs(cli, [name])).catch(() => {});
      }
    };
    return {
      done,
      stop: () => {
        if (cancelled) return;
        cancelled = true;
        void stop();
      },
    };
  }
}
