/**
 * The `kubeface` command.
 *
 * ```sh
 * deno run -A cli.ts map --module examples/squares.ts --out results.jsonl
 * ```
 *
 * Exit status: 0 on success, 1 when a task or the job failed, 2 on a
 * command-line mistake, 130 when interrupted.
 *
 * @module
 */

import { loadTemplatePatchReader } from "./lib/backends/kubernetes/template_patch.ts";
import {
  BackendError,
  CorruptObjectError,
  JobBusyError,
  JobMismatchError,
  StorageError,
  TaskError,
  TaskModuleError,
  WorkerCrashError,
} from "./lib/errors.ts";
import { type Io, UsageError } from "./lib/cli/io.ts";
import { CLEANUP_HELP, cleanupCommand } from "./lib/cli/cleanup.ts";
import { JOBS_HELP, jobsCommand } from "./lib/cli/jobs.ts";
import { LOGS_HELP, logsCommand } from "./lib/cli/logs.ts";
import { STATUS_HELP, statusCommand } from "./lib/cli/status.ts";
import { MAP_HELP, mapCommand, RUN_HELP, runCommand } from "./lib/cli/map.ts";
import { CAT_HELP, catCommand, CP_HELP, cpCommand } from "./lib/cli/objects.ts";

/** A subcommand: its runner and its help. */
interface Command {
  run(args: string[], io: Io): Promise<number>;
  help: string;
  summary: string;
}

const COMMANDS: Record<string, Command> = {
  map: { run: mapCommand, help: MAP_HELP, summary: "map a task module over its inputs" },
  run: {
    run: runCommand,
    help: RUN_HELP,
    summary: "map an expression or shell command over inputs",
  },
  jobs: { run: jobsCommand, help: JOBS_HELP, summary: "list the jobs in a storage root" },
  status: { run: statusCommand, help: STATUS_HELP, summary: "print one job's status" },
  logs: { run: logsCommand, help: LOGS_HELP, summary: "print the output of a job's workers" },
  cat: { run: catCommand, help: CAT_HELP, summary: "print a stored object, decoded" },
  cp: { run: cpCommand, help: CP_HELP, summary: "copy objects between local paths and storage" },
  cleanup: {
    run: cleanupCommand,
    help: CLEANUP_HELP,
    summary: "delete jobs and what their backend keeps",
  },
};

function mainHelp(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((n) => n.length)) + 2;
  return [
    "Usage: kubeface COMMAND [options]",
    "",
    "Run a parallel map of long tasks on local processes, containers or Kubernetes,",
    "with a local directory or Google Cloud Storage as the only channel.",
    "",
    "Commands:",
    ...Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}${c.summary}`),
    "",
    "Run `kubeface COMMAND --help` for a command's options.",
    "",
  ].join("\n");
}

const encoder = new TextEncoder();

/** Colour codes (SGR escape sequences), as Deno's own messages carry them. */
// deno-lint-ignore no-control-regex
const COLOURS = /\x1b\[[0-9;]*m/g;

/** Whether standard error may show colours: a terminal, and `NO_COLOR` unset. */
function colourful(): boolean {
  let noColor: string | undefined;
  try {
    noColor = Deno.env.get("NO_COLOR");
  } catch { /* no --allow-env: assume none */ }
  return Deno.stderr.isTerminal() && !noColor;
}

/** The real terminal. */
function terminal(): Io {
  const colours = colourful();
  return {
    async out(text) {
      const bytes = typeof text === "string" ? encoder.encode(text) : text;
      let written = 0;
      while (written < bytes.length) written += await Deno.stdout.write(bytes.subarray(written));
    },
    err(text) {
      const bytes = encoder.encode(colours ? text : text.replace(COLOURS, ""));
      let written = 0;
      while (written < bytes.length) written += Deno.stderr.writeSync(bytes.subarray(written));
    },
    isTerminal: Deno.stderr.isTerminal(),
    confirm(question) {
      if (!Deno.stdin.isTerminal()) return Promise.resolve(undefined);
      const answer = prompt(`${question} [y/N]`);
      return Promise.resolve(answer !== null && /^y(es)?$/i.test(answer.trim()));
    },
    onInterrupt(handler) {
      // Ctrl-C, and the TERM signal a container stop or a job scheduler sends.
      const signals: Deno.Signal[] = Deno.build.os === "windows"
        ? ["SIGINT"]
        : ["SIGINT", "SIGTERM"];
      for (const signal of signals) Deno.addSignalListener(signal, handler);
      return () => {
        for (const signal of signals) Deno.removeSignalListener(signal, handler);
      };
    },
  };
}

/** Indent every line of a text. */
function indent(text: string): string {
  return text.split("\n").map((line) => `    ${line}`).join("\n");
}

/**
 * What to show under a task module error: Deno's text for a failed bundle,
 * else the stack's frames (its first line repeats the message).
 */
function userLines(error: TaskModuleError): string {
  if (error.stage === "bundle") return error.userStack;
  return error.userStack.split("\n").filter((line) => /^\s+at /.test(line))
    .map((line) => line.trim()).join("\n");
}

/** Run the command line; returns the exit status. */
export async function main(args: string[], io: Io = terminal()): Promise<number> {
  const [name, ...rest] = args;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    await io.out(mainHelp());
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    io.err(`kubeface: unknown command '${name}'\n\n${mainHelp()}`);
    return 2;
  }
  try {
    // A patch file may be YAML, whose reader is big: loaded only when one is given.
    if (rest.some((a) => a.startsWith("--pod-template-patch"))) await loadTemplatePatchReader();
    return await command.run(rest, io);
  } catch (error) {
    if (error instanceof Deno.errors.BrokenPipe) return 141; // the reader went away, as with `| head`
    if (error instanceof UsageError) {
      io.err(`kubeface ${name}: ${error.message}\n\n${command.help}`);
      return error.exitCode;
    }
    if (error instanceof TaskError) {
      io.err(`kubeface: ${error.message}\n${indent(error.remoteStack)}\n`);
      return 1;
    }
    if (error instanceof TaskModuleError) {
      // The user's module failed in the master: show their frames, not kubeface's.
      const lines = userLines(error);
      io.err(`kubeface: ${error.message}\n${lines ? `${indent(lines)}\n` : ""}`);
      return 1;
    }
    if (
      error instanceof WorkerCrashError || error instanceof JobMismatchError ||
      error instanceof StorageError || error instanceof BackendError ||
      error instanceof JobBusyError || error instanceof CorruptObjectError ||
      error instanceof TypeError || error instanceof RangeError
    ) {
      io.err(`kubeface: ${error.message}\n`);
      return 1;
    }
    io.err(`kubeface: unexpected error: ${error instanceof Error ? error.stack : String(error)}\n`);
    return 1;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
