/**
 * `kubeface map` and `kubeface run`: run a job and write `{input, result}`
 * rows in input order.
 *
 * @module
 */

import { dirname, join } from "node:path";
import type { BackendName } from "../backends/backend.ts";
import { sha256Hex } from "../bundle.ts";
import { cacheDir } from "../env.ts";
import { Client, type ClientOptions, type MapOptions } from "../client.ts";
import { JobInterruptedError } from "../errors.ts";
import { applyBackendFlags, backendFlags, backendHelpGroups } from "./backend_flags.ts";
import {
  duration,
  type FlagSpec,
  type FlagValues,
  helpText,
  int,
  JOB_FLAGS,
  keyValues,
  num,
  parseFlags,
  str,
  takePermissionFlags,
} from "./flags.ts";
import { type Io, UsageError } from "./io.ts";
import { type Format, formatFor, FORMATS, ResultWriter } from "./output.ts";
import { ProgressLine } from "./progress.ts";

const PERMISSIONS_HELP: FlagSpec[] = [
  {
    name: "allow-*",
    type: "boolean",
    value: "[=…]",
    help: "Deno permissions for tasks (-A, --allow-net, --allow-read=/data, …); none by default",
  },
];

const MAP_FLAGS: FlagSpec[] = [
  {
    name: "module",
    type: "string",
    short: "m",
    value: "FILE",
    help: "task module exporting `task` and `inputs`",
  },
];

const RUN_FLAGS: FlagSpec[] = [
  {
    name: "expression",
    type: "string",
    short: "e",
    value: "EXPR",
    help: "JavaScript expression of `value`, e.g. 'value ** 2'",
  },
  {
    name: "shell-command",
    type: "string",
    value: "CMD",
    help: "shell command run per input; {} is replaced by the quoted input",
  },
  {
    name: "inputs-expression",
    type: "string",
    short: "i",
    value: "EXPR",
    help: "JavaScript expression giving the inputs (array or iterable)",
  },
];

function groups(own: [string, FlagSpec[]]): [string, readonly FlagSpec[]][] {
  return [
    own,
    ["Job", JOB_FLAGS],
    ["Permissions", PERMISSIONS_HELP],
    ...backendHelpGroups(),
  ];
}

/** Help of `kubeface map`. */
export const MAP_HELP = helpText(
  "kubeface map --module FILE [options]",
  'Map a task module\'s `task` over its `inputs`, one worker per task, and write\none {"input": …, "result": …} line per input, in input order (with --unordered:\n{"index": …, "input": …, "result": …} lines as tasks finish).',
  groups(["Task", MAP_FLAGS]),
);

/** Help of `kubeface run`. */
export const RUN_HELP = helpText(
  "kubeface run (--expression EXPR | --shell-command CMD) --inputs-expression EXPR [options]",
  "Map a JavaScript expression or a shell command over inputs given as an expression.",
  groups(["Task", RUN_FLAGS]),
);

/** Turn the shared job flags into client and map options. */
function jobOptions(values: FlagValues, permissions: string[]): {
  client: ClientOptions;
  map: MapOptions;
} {
  const client: ClientOptions = {
    storage: str(values, "storage"),
    backend: str(values, "backend") as BackendName | undefined,
  };
  applyBackendFlags(values, client);
  const map: MapOptions = {
    job: str(values, "job"),
    parallelism: int(values, "parallelism"),
    itemsPerTask: int(values, "items-per-task"),
    permissions,
    env: keyValues((values.env as string[] | undefined) ?? [], "env"),
    failFast: values["no-fail-fast"] ? false : undefined,
    maxRetries: int(values, "max-retries"),
    retryTaskErrors: values["retry-task-errors"] === true || undefined,
    retryDelayMs: duration(values, "retry-delay"),
    timeoutMs: duration(values, "timeout"),
    graceMs: duration(values, "grace"),
    ordered: values.unordered === true ? false : undefined,
    speculationPercent: num(values, "speculation-percent"),
    speculationRuntimePercentile: num(values, "speculation-runtime-percentile"),
    speculationMaxReruns: int(values, "speculation-max-reruns"),
    statusIntervalMs: duration(values, "status-interval"),
    overwrite: values.overwrite === true || undefined,
  };
  return { client, map };
}

function outputFormat(values: FlagValues): Format {
  const format = str(values, "format");
  if (format === undefined) return formatFor(str(values, "out"));
  if (!(FORMATS as readonly string[]).includes(format)) {
    throw new UsageError(`--format must be one of ${FORMATS.join(", ")}, not '${format}'`);
  }
  return format as Format;
}

/** `kubeface map`. Returns the exit status. */
export async function mapCommand(args: string[], io: Io): Promise<number> {
  const { permissions, rest } = takePermissionFlags(args);
  const { values } = parseFlags(rest, [...MAP_FLAGS, ...JOB_FLAGS, ...backendFlags()]);
  if (values.help) {
    await io.out(MAP_HELP);
    return 0;
  }
  const module = str(values, "module");
  if (!module) throw new UsageError("--module is required: the task module to map");
  const resume = resumeCommand("map", args);
  return await execute(io, module, values, permissions, resume);
}

/** `kubeface run`. Returns the exit status. */
export async function runCommand(args: string[], io: Io): Promise<number> {
  const { permissions, rest } = takePermissionFlags(args);
  const { values } = parseFlags(rest, [...RUN_FLAGS, ...JOB_FLAGS, ...backendFlags()]);
  if (values.help) {
    await io.out(RUN_HELP);
    return 0;
  }
  const expression = str(values, "expression");
  const shell = str(values, "shell-command");
  const inputs = str(values, "inputs-expression");
  if ((expression === undefined) === (shell === undefined)) {
    throw new UsageError("give exactly one of --expression and --shell-command");
  }
  if (inputs === undefined) throw new UsageError("--inputs-expression is required");
  const source = expression !== undefined
    ? expressionModule(expression, inputs)
    : shellModule(shell!, inputs);
  const module = await writeGeneratedModule(
    source,
    expression !== undefined ? "expression" : "shell",
  );
  if (shell !== undefined) permissions.push("--allow-run=sh");
  const resume = resumeCommand("run", args);
  return await execute(io, module, values, permissions, resume);
}

/** The command line to resume a job: the same arguments without `--job`. */
function resumeCommand(command: string, args: readonly string[]): string {
  const kept: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--job") i++;
    else if (!args[i]!.startsWith("--job=")) {
      kept.push(
        /^[\w@%+=:,./-]+$/.test(args[i]!) ? args[i]! : `'${args[i]!.replaceAll("'", "'\\''")}'`,
      );
    }
  }
  return `kubeface ${command} ${kept.join(" ")}`;
}

/** A task module computing an expression of `value`. */
export function expressionModule(expression: string, inputs: string): string {
  return `export const inputs = () => (${inputs});
export function task(value) {
  return (${expression});
}
`;
}

/** A task module running a shell command per input. */
export function shellModule(command: string, inputs: string): string {
  return `const TEMPLATE = ${JSON.stringify(command)};
const quote = (text) => "'" + text.replaceAll("'", "'\\\\''") + "'";
export const inputs = () => (${inputs});
export async function task(value) {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  const command = TEMPLATE.replaceAll("{}", quote(text));
  const { code, stdout, stderr } = await new Deno.Command("sh", {
    args: ["-c", command],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (bytes) => new TextDecoder().decode(bytes);
  if (code !== 0) {
    throw new Error("Command " + JSON.stringify(command) + " exited with code " + code + ": " + decode(stderr).trim());
  }
  return decode(stdout).replace(/\\n$/, "");
}
`;
}

/** Store a generated module under a name derived from its text, so reruns reuse its job. */
async function writeGeneratedModule(source: string, name: string): Promise<string> {
  const hash = await sha256Hex(new TextEncoder().encode(source));
  const path = join(cacheDir("run", hash.slice(0, 16)), `${name}.js`);
  await Deno.mkdir(dirname(path), { recursive: true });
  await Deno.writeTextFile(path, source);
  return path;
}

async function execute(
  io: Io,
  module: string,
  values: FlagValues,
  permissions: string[],
  resume: string,
): Promise<number> {
  const format = outputFormat(values);
  const quiet = values.quiet === true;
  const progress = new ProgressLine(io, quiet);
  const options = jobOptions(values, permissions);
  let run;
  let backend;
  const client = new Client(options.client);
  try {
    backend = await client.backend(); // check the backend's options before anything runs
    run = client.map(module, {
      ...options.map,
      onProgress: progress.update,
      onStart: (info) => {
        if (quiet) return;
        io.err(
          `kubeface: job ${info.job}: ${info.tasks} task(s) for ${info.inputs} input(s)` +
            (info.reused ? `, ${info.reused} reused` : "") + "\n",
        );
        io.err(`kubeface: status ${info.status.html}\n`);
      },
    });
  } catch (error) {
    // Option values are checked before anything runs: these are flag mistakes.
    if (error instanceof RangeError || error instanceof TypeError) {
      throw new UsageError(error.message);
    }
    throw error;
  }

  const out = str(values, "out");
  const temp = out ? `${out}.partial` : undefined;
  const file = temp
    ? await Deno.open(temp, { write: true, create: true, truncate: true })
    : undefined;
  const encoder = new TextEncoder();
  const writer = new ResultWriter(format, async (text) => {
    if (file) await file.write(encoder.encode(text));
    else await io.out(text);
  }, { index: values.unordered === true });
  let interrupts = 0;
  const kept = backend.keepsRunning;
  const removeHandler = io.onInterrupt(async () => {
    if (++interrupts > 1) Deno.exit(130);
    let stopRunning = true;
    if (kept) {
      // The backend can finish the job without us: ask before throwing work away.
      stopRunning = (await io.confirm(`\nStop the job's ${kept} and what they run?`)) ?? false;
      if (!stopRunning) {
        io.err(
          `kubeface: leaving the ${kept} of ${run.job} running; rerun with --job ${run.job} to attach, or delete them with kubeface cleanup ${run.job}\n`,
        );
      }
    }
    if (!quiet) io.err("kubeface: stopping (press Ctrl-C again to quit at once)…\n");
    void run.cancel({ stopRunning });
  });
  const started = Date.now();
  let count = 0;
  try {
    for await (const entry of run.entries()) {
      await writer.row(entry.input, entry.value, entry.index);
      count++;
    }
    await writer.end();
    file?.close();
    if (temp && out) await Deno.rename(temp, out);
    progress.end();
    if (!quiet) {
      io.err(
        `kubeface: job ${run.job} done: ${count} result(s) in ${
          ((Date.now() - started) / 1000).toFixed(1)
        }s` +
          (out ? `, written to ${out}` : "") + "\n",
      );
    }
    return 0;
  } catch (error) {
    progress.end();
    file?.close();
    if (temp) await Deno.remove(temp).catch(() => {});
    if (error instanceof JobInterruptedError) {
      io.err(
        `kubeface: job ${run.job} interrupted; resume it with:\n  ${resume} --job ${run.job}\n`,
      );
      return 130;
    }
    throw error;
  } finally {
    removeHandler();
  }
}
