/**
 * Running a command as a measured child: wall time, CPU time of it and every
 * descendant it waited for (through bash's `times`), and the peak resident
 * memory of the command's own process (sampled from /proc/PID/status).
 *
 * @module
 */

/** What a measured command did. */
export interface Measured {
  /** Exit code. */
  code: number;
  /** Wall time from spawn to exit, in milliseconds. */
  wallMs: number;
  /** User CPU time of the command and its waited-for descendants, in milliseconds. */
  userMs: number;
  /** System CPU time, likewise. */
  sysMs: number;
  /** Highest VmHWM seen of the command's own process (not its children), in bytes. */
  peakRssBytes: number | undefined;
  stdout: string;
  stderr: string;
}

/** Options of {@linkcode measure}. */
export interface MeasureOptions {
  cwd?: string | URL;
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** Time between memory samples, in milliseconds. @default {20} */
  sampleMs?: number;
  /** Pass the command's standard error through instead of capturing it. @default {false} */
  inheritStderr?: boolean;
}

/** The `VmHWM` (peak resident set) of a process, in bytes, or `undefined` once it is gone. */
export function vmHwm(pid: number | "self"): number | undefined {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const kb = /^VmHWM:\s+(\d+) kB/m.exec(status)?.[1];
    return kb === undefined ? undefined : Number(kb) * 1024;
  } catch {
    return undefined;
  }
}

/** Child pids of a process (Linux `/proc/PID/task/TID/children`). */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const task of Deno.readDirSync(`/proc/${pid}/task`)) {
      const text = Deno.readTextFileSync(`/proc/${pid}/task/${task.name}/children`).trim();
      if (text) out.push(...text.split(/\s+/).map(Number));
    }
  } catch { /* gone */ }
  return out;
}

function parseTimes(text: string): { userMs: number; sysMs: number } {
  // Line 2 of `times` is the children's user and system time, e.g. `0m1.234s 0m0.056s`.
  const line = text.trim().split("\n")[1] ?? "";
  const parts = [...line.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
  return { userMs: (parts[0] ?? NaN) * 1000, sysMs: (parts[1] ?? NaN) * 1000 };
}

/**
 * Run `command args…` under `bash -c '…; times'` and measure it.
 *
 * @throws {Error} bash or the command cannot be started.
 */
export async function measure(
  command: string,
  args: readonly string[],
  options: MeasureOptions = {},
): Promise<Measured> {
  const timesFile = await Deno.makeTempFile({ prefix: "kubeface-bench-times-" });
  try {
    const started = performance.now();
    const child = new Deno.Command("bash", {
      args: [
        "-c",
        '"$@"; code=$?; times > "$KF_BENCH_TIMES"; exit $code',
        "bash",
        command,
        ...args,
      ],
      cwd: options.cwd,
      env: { ...options.env, KF_BENCH_TIMES: timesFile },
      stdin: "null",
      stdout: "piped",
      stderr: options.inheritStderr ? "inherit" : "piped",
    }).spawn();
    let peak: number | undefined;
    let target: number | undefined;
    const sampler = setInterval(() => {
      target ??= childPids(child.pid)[0];
      const hwm = target === undefined ? undefined : vmHwm(target);
      if (hwm !== undefined) peak = Math.max(peak ?? 0, hwm);
    }, options.sampleMs ?? 20);
    const [status, stdout, stderr] = await Promise.all([
      child.status,
      new Response(child.stdout).text(),
      options.inheritStderr ? Promise.resolve("") : new Response(child.stderr).text(),
    ]);
    clearInterval(sampler);
    const wallMs = performance.now() - started;
    const times = parseTimes(await Deno.readTextFile(timesFile).catch(() => ""));
    return { code: status.code, wallMs, ...times, peakRssBytes: peak, stdout, stderr };
  } finally {
    await Deno.remove(timesFile).catch(() => {});
  }
}

/**
 * The last line of `stdout` that is a JSON object, parsed.
 *
 * @throws {Error} There is none; the message holds the output's tail.
 */
export function lastJson<T>(result: Pick<Measured, "stdout" | "stderr" | "code">, what: string): T {
  const line = result.stdout.trim().split("\n").reverse().find((l) => l.startsWith("{"));
  if (line === undefined) {
    throw new Error(
      `${what} printed no JSON result (exit code ${result.code}):\n${
        (result.stdout + result.stderr).trim().split("\n").slice(-30).join("\n")
      }`,
    );
  }
  return JSON.parse(line) as T;
}

/** Run a command to its end, throwing with its output when it fails. */
export async function run(
  command: string,
  args: readonly string[],
  options: { cwd?: string | URL; env?: Record<string, string>; what?: string } = {},
): Promise<string> {
  const out = await new Deno.Command(command, {
    args: [...args],
    cwd: options.cwd,
    env: options.env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    const err = new TextDecoder().decode(out.stderr).trim().split("\n").slice(-30).join("\n");
    throw new Error(
      `Cannot ${options.what ?? `run ${command} ${args.join(" ")}`}: exit code ${out.code}\n${err}`,
    );
  }
  return text;
}
