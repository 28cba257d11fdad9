/**
 * One run of a container as a local process: its own session (so the whole tree can be
 * signalled and measured), stdout and stderr appended to a log file, a pid file for
 * `cluster:down`, and the exit code the way a container runtime reports it.
 *
 * @module
 */

import { signalGroup, spawnLogged } from "../processes.ts";

/** Options of {@link ContainerProcess.start}. */
export interface ContainerProcessOptions {
  program: string;
  args: string[];
  /** The complete environment (nothing is inherited). */
  env: Record<string, string>;
  cwd: string;
  /** Receives stdout and stderr. */
  logFile: string;
  /** Receives the pid while the process runs. */
  pidFile: string;
}

/** How a container process ended. */
export interface ContainerExit {
  /** The exit code; 128 + n when killed by signal n (137 for SIGKILL). */
  exitCode: number;
  signal: Deno.Signal | null;
  finishedAt: Date;
}

/** A running container process. */
export class ContainerProcess {
  /** The pid, which is also its process group and session id. */
  readonly pid: number;
  readonly startedAt: Date;
  /** Resolves when the process has exited. */
  readonly exited: Promise<ContainerExit>;
  #exit: ContainerExit | undefined;

  private constructor(child: Deno.ChildProcess, pidFile: string) {
    this.pid = child.pid;
    this.startedAt = new Date();
    this.exited = child.status.then(async (status) => {
      this.#exit = { exitCode: status.code, signal: status.signal, finishedAt: new Date() };
      // Like a runtime tearing down the container's cgroup: nothing of it outlives its main process.
      signalGroup(this.pid, "SIGKILL");
      await Deno.remove(pidFile).catch(() => {});
      return this.#exit;
    });
  }

  /**
   * Start a container process.
   *
   * @param options Program, arguments, environment, working directory, log and pid files.
   * @returns The running process.
   */
  static async start(options: ContainerProcessOptions): Promise<ContainerProcess> {
    const { program, ...rest } = options;
    const child = await spawnLogged(program, { ...rest, clearEnv: true });
    return new ContainerProcess(child, options.pidFile);
  }

  /** The exit, once the process has exited. */
  get exit(): ContainerExit | undefined {
    return this.#exit;
  }

  /**
   * Signal the whole process group.
   *
   * @param signal The signal.
   */
  kill(signal: Deno.Signal): void {
    if (!this.#exit) signalGroup(this.pid, signal);
  }

  /**
   * SIGTERM, then SIGKILL after `graceSeconds`; resolves when the process has exited.
   *
   * @param graceSeconds Seconds between SIGTERM and SIGKILL (0 kills at once).
   * @returns The exit.
   */
  async stop(graceSeconds: number): Promise<ContainerExit> {
    if (graceSeconds <= 0) {
      this.kill("SIGKILL");
      return await this.exited;
    }
    this.kill("SIGTERM");
    const timer = setTimeout(() => this.kill("SIGKILL"), graceSeconds * 1000);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}
