/**
 * `kubeface map` and `kubeface run`: run a job and write `{input, result}`
 * rows in input order.
 *
 * @module
 */

import { dirname, join } from "node:path";
import { sha256Hex } from "../sha256.ts";
import { cacheDir } from "../env.ts";
import { Client } from "../client.ts";
import { errorMessage, JobInterruptedError, TaskError, TaskModuleError } from "../errors.ts";
import { StoredFile } from "../file_store.ts";
import { FILE_KIND } from "../files.ts";
import type { Logger } from "../log.ts";
import { replaceRefs } from "../refs.ts";
import { moduleUrl } from "../task_module.ts";
import { clientOptionsFromFlags } from "./args.ts";
import { backendFlags, backendHelpGroups } from "./backend_flags.ts";
import {
  type FlagSpec,
  type FlagValues,
  helpText,
  JOB_FLAGS,
  parseFlags,
  PERMISSION_FLAGS,
  str,
  takePermissionFlags,
} from "./flags.ts";
import { type Io, UsageError } from "./io.ts";
import { BufferedText, type Format, formatFor, FORMATS, ResultWriter } from "./output.ts";
import { ProgressLine } from "./progress.ts";

/** Where the results go, for `map` and `run`. */
const OUTPUT_FLAGS: FlagSpec[] = [
  {
    name: "out",
    type: "string",
    value: "FILE",
    help: "write results to FILE instead of standard output",
  },
  {
    name: "out-dir",
    type: "string",
    value: "DIR",
    help: "save result files under DIR/<input index>/; rows name them",
    default: "rows name the files' storage URLs",
  },
  {
    name: "format",
    type: "string",
    value: "FORMAT",
    help: "jsonl or csv",
    default: "from --out's extension, else jsonl",
  },
  { name: "quiet", type: "boolean", short: "q", help: "print no progress and no job information" },
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
    ["Output", OUTPUT_FLAGS],
    ["Job", JOB_FLAGS],
    ["Permissions", PERMISSION_FLAGS],
    ...backendHelpGroups(),
  ];
}

/** Every flag of a job command, besides its own. */
function commandFlags(own: FlagSpec[]): FlagSpec[] {
  return [...own, ...OUTPUT_FLAGS, ...JOB_FLAGS, ...backendFlags()];
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
  const { values } = parseFlags(rest, commandFlags(MAP_FLAGS));
  if (values.help) {
    await io.out(MAP_HELP);
    return 0;
  }
  const module = str(values, "module");
  if (!module) throw new UsageError("--module is required: the task module to map");
  const resume = resumeCommand("map", args);
  return await execute(io, moduleUrl(module), values, permissions, resume);
}

/** `kubeface run`. Returns the exit status. */
export async function runCommand(args: string[], io: Io): Promise<number> {
  const { permissions, rest } = takePermissionFlags(args);
  const { values } = parseFlags(rest, commandFlags(RUN_FLAGS));
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
  checkExpression("--inputs-expression", inputs, []);
  if (expression !== undefined) checkExpression("--expression", expression, ["value"]);
  const source = expression !== undefined
    ? expressionModule(expression, inputs)
    : shellModule(shell!, inputs);
  const module = await writeGeneratedModule(
    source,
    expression !== undefined ? "expression" : "shell",
  );
  if (shell !== undefined) permissions.push("--allow-run=sh");
  const resume = resumeCommand("run", args);
  try {
    return await execute(io, module, values, permissions, resume);
  } catch (error) {
    throw expressionError(error, expression, inputs) ?? error;
  }
}

/**
 * Check that a flag's text is a JavaScript expression of `params`.
 *
 * @throws {UsageError} It does not parse.
 */
function checkExpression(flag: string, text: string, params: string[]): void {
  try {
    new Function(...params, `return (\n${text}\n);`);
  } catch (error) {
    throw new UsageError(
      `${flag} '${text}' is not a JavaScript expression: ${(error as Error).message}`,
    );
  }
}

/**
 * The usage error an expression of `kubeface run` caused, if it did: the
 * inputs expression threw, or the expression names something that does not
 * exist (a ReferenceError in a task).
 */
function expressionError(
  error: unknown,
  expression: string | undefined,
  inputs: string,
): UsageError | undefined {
  if (error instanceof TaskModuleError && error.stage === "inputs") {
    const cause = error.cause instanceof Error
      ? `${error.cause.name}: ${error.cause.message}`
      : String(error.cause);
    return new UsageError(`--inputs-expression '${inputs}' threw ${cause}`);
  }
  if (error instanceof TaskModuleError) {
    return new UsageError(`--expression or --inputs-expression is not valid: ${error.userStack}`);
  }
  if (
    expression !== undefined && error instanceof TaskError && error.remoteName === "ReferenceError"
  ) {
    return new UsageError(
      `--expression '${expression}' threw ReferenceError: ${error.remoteMessage} (for input ${error.input})`,
    );
  }
  return undefined;
}

/** The command line to resume a job: the same arguments without `--job`. */
function resumeCommand(command: string, args: readonly string[]): string {
  const kept: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--job" || args[i] === "--job-prefix") i++;
    else if (!/^--job(-prefix)?=/.test(args[i]!)) {
      kept.push(
        /^[\w@%+=:,./-]+$/.test(args[i]!) ? args[i]! : `'${args[i]!.replaceAll("'", "'\\''")}'`,
      );
    }
  }
  return `kubeface ${command} ${kept.join(" ")}`;
}

/**
 * Save the result files in a value under `dir`, and put where each went in
 * its place: `{ file: PATH, size }`.
 */
async function saveFiles(value: unknown, dir: string): Promise<unknown> {
  const saves: Promise<void>[] = [];
  const replaced = replaceRefs(value, FILE_KIND, (ref) => {
    if (!(ref instanceof StoredFile)) return ref;
    const path = join(dir, ref.name);
    saves.push(ref.saveTo(path));
    return { file: path, size: ref.size };
  });
  await Promise.all(saves);
  return replaced;
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
  module: string | URL,
  values: FlagValues,
  permissions: string[],
  resume: string,
): Promise<number> {
  const format = outputFormat(values);
  const quiet = values.quiet === true;
  const verbose = values.verbose === true;
  const progress = new ProgressLine(io, quiet || verbose);
  const logger: Logger = (channel, message) => io.err(`kubeface: ${channel}: ${message}\n`);
  const options = clientOptionsFromFlags(values, permissions, logger);
  if (!quiet) {
    // A missing worker image is built on first use: say so, it takes a while.
    options.container = {
      ...options.container,
      onProgress: (line) => io.err(`kubeface: ${line}\n`),
    };
  }
  let run;
  let backend;
  const client = new Client(options);
  try {
    backend = await client.backend(); // check the backend's options before anything runs
    try {
      backend.checkStorage?.(client.storage);
    } catch (error) {
      throw new UsageError(errorMessage(error)); // --storage and --backend do not go together
    }
    run = client.map(module, {
      ordered: values.unordered === true ? false : undefined,
      onProgress: progress.update,
      onPrepare: (info) => {
        if (quiet) return;
        io.err(`kubeface: job ${info.job}\nkubeface: status ${info.status.html}\n`);
      },
      onStart: (info) => {
        if (quiet) return;
        progress.end();
        io.err(
          `kubeface: job ${info.job}: ${info.tasks} task(s) for ${info.inputs} input(s)` +
            (info.reused ? `, ${info.reused} reused` : "") + "\n",
        );
      },
      onWarning: (message) => {
        progress.end();
        io.err(`kubeface: warning: ${message}\n`);
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
  const outDir = str(values, "out-dir");
  const temp = out ? `${out}.partial` : undefined;
  const file = temp
    ? await Deno.open(temp, { write: true, create: true, truncate: true })
    : undefined;
  const encoder = new TextEncoder();
  const buffer = new BufferedText(async (text) => {
    if (!file) return await io.out(text);
    const bytes = encoder.encode(text);
    let written = 0;
    while (written < bytes.length) written += await file.write(bytes.subarray(written));
  });
  const writer = new ResultWriter(format, (text) => buffer.add(text), {
    index: values.unordered === true,
  });
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
      const value = outDir
        ? await saveFiles(entry.value, join(outDir, String(entry.index)))
        : entry.value;
      await writer.row(entry.index, entry.input, value);
      count++;
    }
    await writer.end();
    await buffer.flush();
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
    // The rows of the results that came before the error.
    if (!file) await buffer.flush().catch(() => {});
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
