/**
 * Long-running background processes that outlive the script that started them: each runs in
 * its own session (so its whole process group can be signalled), appends its output to a log
 * file, and has its pid recorded in a file so another process can stop it.
 *
 * @module
 */

/** Options of {@link spawnLogged} and {@link spawnDetached}. */
export interface SpawnDetachedOptions {
  /** Arguments after the program. @default [] */
  args?: string[];
  /** File that receives stdout and stderr (appended). */
  logFile: string;
  /** File that receives the pid. */
  pidFile: string;
  /** Extra environment variables. @default {} */
  env?: Record<string, string>;
  /** Whether `env` is the whole environment (nothing inherited). @default false */
  clearEnv?: boolean;
  /** Working directory. @default the current directory */
  cwd?: string;
}

/**
 * Start `program` in a new session, with output appended to a log file and its pid written to
 * the pid file. A shell does the redirection and then becomes the program (same pid).
 *
 * @param program Absolute path or name on PATH.
 * @param options Arguments, log file, pid file, environment and working directory.
 * @returns The child; its pid is also its process group id.
 */
export async function spawnLogged(
  program: string,
  options: SpawnDetachedOptions,
): Promise<Deno.ChildProcess> {
  const { args = [], logFile, pidFile, env = {}, clearEnv = false, cwd } = options;
  const child = new Deno.Command("/bin/sh", {
    args: ["-c", 'log=$1; shift; exec "$@" >>"$log" 2>&1', "sh", logFile, program, ...args],
    env,
    clearEnv,
    cwd,
    detached: true,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  await Deno.writeTextFile(pidFile, `${child.pid}\n`);
  return child;
}

/**
 * Start `program` with {@link spawnLogged}, detached from this process: it outlives it.
 *
 * @param program Absolute path or name on PATH.
 * @param options Arguments, log file, pid file, environment and working directory.
 * @returns The pid, which is also the process group id.
 */
export async function spawnDetached(
  program: string,
  options: SpawnDetachedOptions,
): Promise<number> {
  const child = await spawnLogged(program, options);
  child.unref();
  // Reap the child if it exits while this process still runs, so it never lingers as a zombie.
  child.status.catch(() => {});
  return child.pid;
}

/**
 * Whether a process is alive (a zombie counts as dead).
 *
 * @param pid The process id.
 * @returns `true` when `/proc/<pid>` exists and the process is not a zombie.
 */
export function isAlive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/**
 * The command line of a process, or `undefined` when it is gone.
 *
 * @param pid The process id.
 * @returns The arguments, NUL-separated in /proc, joined by spaces.
 */
export function commandLine(pid: number): string | undefined {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0").join(" ").trim();
  } catch {
    return undefined;
  }
}

/**
 * Stop a process group: SIGTERM, then SIGKILL when it is still alive after `graceMs`.
 *
 * @param pid The pid of the group leader (as returned by {@link spawnDetached}).
 * @param graceMs How long to wait after SIGTERM.
 * @returns Once the leader is gone.
 */
export async function stopGroup(pid: number, graceMs: number): Promise<void> {
  signalGroup(pid, "SIGTERM");
  const deadline = Date.now() + graceMs;
  while (isAlive(pid) && Date.now() < deadline) await delay(50);
  if (isAlive(pid)) {
    signalGroup(pid, "SIGKILL");
    while (isAlive(pid)) await delay(50);
  }
}

/**
 * Send a signal to a whole process group, ignoring a group that is already gone.
 *
 * @param pid The process group id.
 * @param signal The signal.
 */
export function signalGroup(pid: number, signal: Deno.Signal): void {
  try {
    Deno.kill(-pid, signal);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}

/** Resolve after `ms` milliseconds. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
