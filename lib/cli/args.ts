/**
 * kubeface's flags on any command line: `kubeface map` and `run`, and job
 * files (`Client.fromArgs(Deno.args)`). They are parsed out of the command
 * line into client options, and whatever is not kubeface's is left, in
 * order, for the job file's own parser.
 *
 * `Client.fromArgs` is a job file's command line, as `cli.ts` is kubeface's:
 * it alone here writes to the terminal (help, mistakes, `--verbose` lines)
 * and exits. `parseKubefaceArgs` only parses, for job files that want to.
 *
 * @module
 */

import { basename } from "node:path";
import { fileURLToPath } from "node:url";
import { BACKEND_NAMES, type BackendName } from "../backends/backend.ts";
import { checkKubernetesOptions } from "../backends/kubernetes/options.ts";
import type { ClientOptions } from "../client.ts";
import { defaultBackend } from "../env.ts";
import type { LogChannel, Logger } from "../log.ts";
import {
  checkJobPrefix,
  MAX_PARALLELISM,
  MIN_STATUS_INTERVAL_MS,
  resolveJobOptions,
} from "../options.ts";
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
  PERMISSION_FLAGS,
  str,
} from "./flags.ts";
import { UsageError } from "./io.ts";

/** What {@linkcode parseKubefaceArgs} found on a command line. */
export interface KubefaceArgs {
  /** Client options from kubeface's flags; give them to `new Client(options)`. */
  options: ClientOptions;
  /**
   * Every argument that is not kubeface's, in the order given: the job
   * file's own flags, their values and positionals, and everything after
   * `--` (with the `--`).
   */
  rest: string[];
  /** `--help` or `-h` was given. */
  help: boolean;
}

/** Options of {@linkcode parseKubefaceArgs}. */
export interface ParseKubefaceArgsOptions {
  /**
   * Where `--verbose` sends its lines.
   *
   * @default {standard error, as `kubeface: CHANNEL: MESSAGE` lines}
   */
  logger?: Logger;
}

/** Options of `Client.fromArgs`. */
export interface FromArgsOptions {
  /**
   * The usage line `--help` starts with.
   *
   * @default {"deno run -A <the main module's file name> [options]"}
   */
  usage?: string;
  /**
   * What the job file does, shown by `--help` under the usage line.
   *
   * @default {"Runs its maps with kubeface; these options choose where and how."}
   */
  description?: string;
}

/** A `--verbose` logger writing `kubeface: CHANNEL: MESSAGE` lines to standard error. */
export const stderrLogger: Logger = (channel: LogChannel, message: string): void => {
  Deno.stderr.writeSync(new TextEncoder().encode(`kubeface: ${channel}: ${message}\n`));
};

/** Every flag kubeface takes in a job file, by name. */
function clientFlags(): Map<string, FlagSpec> {
  return new Map([...JOB_FLAGS, ...backendFlags()].map((spec) => [spec.name, spec]));
}

/** Deno permission flags, passed to tasks as they are. */
function isPermissionFlag(arg: string): boolean {
  return arg === "-A" || /^--allow-[a-z-]+(=.*)?$/.test(arg);
}

/**
 * Split a command line into kubeface's flags (with their values), Deno
 * permission flags, `--help`, and the rest, in order. Nothing after `--`
 * is kubeface's.
 */
function splitArgs(args: readonly string[]): {
  own: string[];
  permissions: string[];
  rest: string[];
  help: boolean;
} {
  const specs = clientFlags();
  const own: string[] = [];
  const permissions: string[] = [];
  const rest: string[] = [];
  let help = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--") {
      rest.push(...args.slice(i));
      break;
    }
    if (arg === "--help" || arg === "-h") {
      help = true;
      continue;
    }
    if (isPermissionFlag(arg)) {
      permissions.push(arg);
      continue;
    }
    const match = /^--([a-z][a-z0-9-]*)(=.*)?$/s.exec(arg);
    const spec = match ? specs.get(match[1]!) : undefined;
    if (!spec) {
      rest.push(arg);
      continue;
    }
    own.push(arg);
    if (spec.type === "string" && match![2] === undefined && i + 1 < args.length) {
      own.push(args[++i]!);
    }
  }
  return { own, permissions, rest, help };
}

/**
 * Client options from parsed flag values (of {@linkcode JOB_FLAGS} and the
 * backends' flags) and Deno permission flags; only what was given is set.
 * Every value is checked here, before anything runs.
 *
 * @throws {UsageError} A value is malformed or out of range.
 */
export function clientOptionsFromFlags(
  values: FlagValues,
  permissions: readonly string[],
  logger: Logger = stderrLogger,
): ClientOptions {
  const env = (values.env as string[] | undefined) ?? [];
  const options: ClientOptions = {
    storage: str(values, "storage"),
    backend: str(values, "backend") as BackendName | undefined,
    job: str(values, "job"),
    jobPrefix: str(values, "job-prefix"),
    config: str(values, "config"),
    parallelism: int(values, "parallelism", { min: 1, max: MAX_PARALLELISM }),
    itemsPerTask: int(values, "items-per-task", { min: 1 }),
    permissions: permissions.length > 0 ? [...permissions] : undefined,
    env: env.length > 0 ? keyValues(env, "env") : undefined,
    failFast: values["no-fail-fast"] ? false : undefined,
    maxRetries: int(values, "max-retries"),
    maxInputs: int(values, "max-inputs", { min: 1 }),
    attach: values.attach === true || undefined,
    retryTaskErrors: values["retry-task-errors"] === true || undefined,
    retryDelayMs: duration(values, "retry-delay"),
    timeoutMs: duration(values, "timeout", 1),
    graceMs: duration(values, "grace"),
    speculationPercent: num(values, "speculation-percent"),
    speculationRuntimePercentile: num(values, "speculation-runtime-percentile"),
    speculationMaxReruns: int(values, "speculation-max-reruns"),
    statusIntervalMs: duration(values, "status-interval", MIN_STATUS_INTERVAL_MS),
    overwrite: values.overwrite === true || undefined,
    logger: values.verbose === true ? logger : undefined,
  };
  applyBackendFlags(values, options);
  for (const key of Object.keys(options) as (keyof ClientOptions)[]) {
    if (options[key] === undefined) delete options[key];
  }
  try {
    resolveJobOptions(options, new URL("file:///job.ts")); // numbers, the job key, permissions
    if (options.jobPrefix !== undefined) checkJobPrefix(options.jobPrefix);
    if (options.job !== undefined && options.jobPrefix !== undefined) {
      throw new TypeError("Cannot use --job and --job-prefix together: give one of them");
    }
    const backend = options.backend;
    if (typeof backend === "string" && !(BACKEND_NAMES as readonly string[]).includes(backend)) {
      throw new TypeError(
        `Cannot use backend '${backend}': choose one of ${BACKEND_NAMES.join(", ")}`,
      );
    }
    if (options.kubernetes) checkKubernetesOptions(options.kubernetes);
  } catch (error) {
    if (error instanceof TypeError || error instanceof RangeError) {
      throw new UsageError(error.message);
    }
    throw error;
  }
  return options;
}

/**
 * Parse kubeface's flags out of a command line, for a job file that has
 * flags of its own: kubeface's become client options, and the rest is left
 * in order for the job file's own parser (which then reports flags nobody
 * knows). Deno permission flags (`-A`, `--allow-net`, …) are the tasks'.
 *
 * @example A job file with a flag of its own
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseArgs } from "node:util";
 * import { Client, parseKubefaceArgs } from "@kubeface/kubeface";
 *
 * const { options, rest, help } = parseKubefaceArgs([
 *   "--backend",
 *   "local",
 *   "--count",
 *   "5",
 *   "--max-retries",
 *   "4",
 *   "--allow-net",
 * ]);
 * assert.equal(help, false);
 * assert.deepEqual(rest, ["--count", "5"]);
 * const own = parseArgs({ args: rest, options: { count: { type: "string" } } });
 * assert.equal(own.values.count, "5");
 * const client = new Client(options);
 * assert.equal(client.options.maxRetries, 4);
 * assert.deepEqual(client.options.permissions, ["--allow-net"]);
 * ```
 *
 * @param args The command line, usually `Deno.args`.
 * @param options Where `--verbose` logs go.
 * @returns The client options, the other arguments, and whether `--help` was given.
 * @throws {UsageError} A kubeface flag has a missing or malformed value.
 */
export function parseKubefaceArgs(
  args: readonly string[],
  options: ParseKubefaceArgsOptions = {},
): KubefaceArgs {
  const { own, permissions, rest, help } = splitArgs(args);
  const { values } = parseFlags(own, [...JOB_FLAGS, ...backendFlags()]);
  return { options: clientOptionsFromFlags(values, permissions, options.logger), rest, help };
}

/** The name a job file is run by, for its usage line. */
function mainModuleName(): string {
  try {
    const main = new URL(Deno.mainModule);
    return main.protocol === "file:" ? basename(fileURLToPath(main)) : basename(main.pathname);
  } catch {
    return "job.ts";
  }
}

/**
 * The help of kubeface's flags, with their defaults, as `--help` of a job
 * file shows it: a job file with flags of its own prints its own after it.
 *
 * @example The help of a job file with flags of its own
 * ```ts
 * import assert from "node:assert/strict";
 * import { kubefaceHelp } from "@kubeface/kubeface";
 *
 * const help = kubefaceHelp("deno run -A nightly.ts [--day DAY] [options]");
 * assert.match(help, /^Usage: deno run -A nightly\.ts \[--day DAY\] \[options\]/);
 * assert.match(help, /--parallelism N +most tasks running at once \[default: 4\]/);
 * ```
 *
 * @param usage The usage line.
 * @param description What the job file does.
 * @returns The help text, ending with a newline.
 */
export function kubefaceHelp(
  usage = `deno run -A ${mainModuleName()} [options]`,
  description = "Runs its maps with kubeface; these options choose where and how.",
): string {
  return helpText(usage, description, [
    ["kubeface options", JOB_FLAGS],
    ["Permissions of the tasks", PERMISSION_FLAGS],
    ...backendHelpGroups(),
  ]);
}

function write(stream: { writeSync(p: Uint8Array): number }, text: string): void {
  const bytes = new TextEncoder().encode(text);
  let written = 0;
  while (written < bytes.length) written += stream.writeSync(bytes.subarray(written));
}

/**
 * Client options from a job file's whole command line, as a command takes
 * them: `--help` prints the help and exits 0; an unknown flag, a stray
 * argument or a bad value prints the mistake and exits 2.
 */
export function clientOptionsFromArgs(
  args: readonly string[],
  options: FromArgsOptions = {},
): ClientOptions {
  const help = () => kubefaceHelp(options.usage, options.description);
  try {
    const parsed = parseKubefaceArgs(args);
    if (parsed.help) {
      write(Deno.stdout, help());
      Deno.exit(0);
    }
    parseFlags(parsed.rest, []); // anything left is a mistake: name it
    const options = parsed.options;
    if ((options.backend ?? defaultBackend()) === "container") {
      // A missing worker image is built on first use: say so, it takes a while.
      const onProgress = (line: string) => write(Deno.stderr, `kubeface: ${line}\n`);
      options.container = { onProgress, ...options.container };
    }
    return options;
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    write(
      Deno.stderr,
      `${mainModuleName()}: ${error.message}\nRun it with --help to list kubeface's options.\n`,
    );
    Deno.exit(error.exitCode);
  }
}
