/**
 * Command-line flags: one table per group, read both by the parser and by
 * `--help`. Parsing uses `node:util` parseArgs in strict mode; Deno-style
 * permission flags (`-A`, `--allow-net`, `--allow-read=/data`) are taken out
 * first and passed to tasks as they are.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { defaultStorage } from "../env.ts";
import { errorMessage } from "../errors.ts";
import { DEFAULTS } from "../options.ts";
import { openStorage, type Storage } from "../storage/storage.ts";
import { UsageError } from "./io.ts";

/** One flag. */
export interface FlagSpec {
  /** Long name, without `--`. */
  name: string;
  type: "string" | "boolean";
  /** May be given more than once. */
  multiple?: boolean;
  /** One-letter alias. */
  short?: string;
  /** Placeholder shown in help, e.g. `N`. */
  value?: string;
  /** One line of help. */
  help: string;
  /** Default shown in help. */
  default?: string;
}

/** Parsed flag values. */
export type FlagValues = Record<string, string | boolean | string[] | undefined>;

/** `--storage`, which every command that reads or writes a storage root takes. */
export const STORAGE_FLAG: FlagSpec = {
  name: "storage",
  type: "string",
  value: "URL",
  help: "storage root: a directory or gs://BUCKET/PREFIX (env KUBEFACE_STORAGE)",
  default: "~/.local/share/kubeface",
};

/** Open the storage `--storage` names, or the default one. */
export async function storageFrom(values: FlagValues): Promise<Storage> {
  return await openStorage(str(values, "storage") ?? defaultStorage());
}

/**
 * Flags of where and how jobs run, which the job commands (`map`, `run`)
 * and job files (`Client.fromArgs`) take. Their defaults are read from
 * {@linkcode DEFAULTS}, the table the API uses.
 */
export const JOB_FLAGS: FlagSpec[] = [
  STORAGE_FLAG,
  {
    name: "backend",
    type: "string",
    value: "NAME",
    help: "where tasks run: local, container or kubernetes (env KUBEFACE_BACKEND)",
    default: "local",
  },
  {
    name: "job",
    type: "string",
    value: "KEY",
    help: "job key; a rerun with the same key reuses results",
    default: "generated",
  },
  {
    name: "job-prefix",
    type: "string",
    value: "PREFIX",
    help: "key the n-th map PREFIX-000, PREFIX-001, …, so a rerun resumes each",
  },
  {
    name: "config",
    type: "string",
    value: "FILE",
    help: "deno.json the task module is bundled with (its import map and lock file)",
    default: "the nearest deno.json, deno.jsonc or package.json above the module",
  },
  {
    name: "parallelism",
    type: "string",
    value: "N",
    help: "most tasks running at once",
    default: String(DEFAULTS.parallelism),
  },
  {
    name: "items-per-task",
    type: "string",
    value: "N",
    help: "inputs per task",
    default: String(DEFAULTS.itemsPerTask),
  },
  {
    name: "overwrite",
    type: "boolean",
    help:
      "replace a stored job with this key made from another module or inputs, or a damaged one; take it over from a running master",
  },
  {
    name: "attach",
    type: "boolean",
    help: "follow the job another master runs with this key: print its results, run nothing",
  },
  {
    name: "max-inputs",
    type: "string",
    value: "N",
    help: "most inputs a job may have",
    default: String(DEFAULTS.maxInputs),
  },
  {
    name: "no-fail-fast",
    type: "boolean",
    help: "let every other task finish before reporting a failed one",
  },
  {
    name: "max-retries",
    type: "string",
    value: "N",
    help: "restarts of a task whose worker crashed or timed out",
    default: String(DEFAULTS.maxRetries),
  },
  { name: "retry-task-errors", type: "boolean", help: "also restart tasks whose code threw" },
  {
    name: "retry-delay",
    type: "string",
    value: "DURATION",
    help: "first delay before a restart, doubling after",
    default: `${DEFAULTS.retryDelayMs}ms`,
  },
  {
    name: "timeout",
    type: "string",
    value: "DURATION",
    help: "time limit of one attempt, e.g. 90s, 30m, 2h",
    default: "none",
  },
  {
    name: "grace",
    type: "string",
    value: "DURATION",
    help: "time a stopped task gets to checkpoint after its signal",
    default: `${DEFAULTS.graceMs / 1000}s`,
  },
  {
    name: "unordered",
    type: "boolean",
    help: "write results as tasks finish, with their index",
  },
  {
    name: "speculation-percent",
    type: "string",
    value: "P",
    help: "rerun stragglers once at most P% of tasks are unfinished; 0 = off",
    default: String(DEFAULTS.speculationPercent),
  },
  {
    name: "speculation-runtime-percentile",
    type: "string",
    value: "P",
    help: "a straggler runs longer than this percentile of runtimes",
    default: String(DEFAULTS.speculationRuntimePercentile),
  },
  {
    name: "speculation-max-reruns",
    type: "string",
    value: "N",
    help: "most speculative copies of one task",
    default: String(DEFAULTS.speculationMaxReruns),
  },
  {
    name: "status-interval",
    type: "string",
    value: "DURATION",
    help: "most time between status page rewrites",
    default: `${DEFAULTS.statusIntervalMs}ms`,
  },
  {
    name: "env",
    type: "string",
    multiple: true,
    value: "KEY=VALUE",
    help: "set an environment variable for every worker (repeatable)",
  },
  {
    name: "verbose",
    type: "boolean",
    help: "log each step (bundling, storage and backend calls) to standard error",
  },
];

/** What a task may do: Deno's permission flags, shown in `--help` (they are parsed apart). */
export const PERMISSION_FLAGS: FlagSpec[] = [
  {
    name: "allow-*",
    type: "boolean",
    value: "[=…]",
    help: "Deno permissions for tasks (-A, --allow-net, --allow-read=/data, …); none by default",
  },
];

/** The `--help` flag every command takes. */
export const HELP_FLAG: FlagSpec = {
  name: "help",
  type: "boolean",
  short: "h",
  help: "show this help",
};

/** Take Deno permission flags out of an argument list. */
export function takePermissionFlags(
  args: readonly string[],
): { permissions: string[]; rest: string[] } {
  const permissions: string[] = [];
  const rest: string[] = [];
  let afterDashes = false;
  for (const arg of args) {
    if (!afterDashes && (arg === "-A" || /^--allow-[a-z]+(=.*)?$/.test(arg))) permissions.push(arg);
    else rest.push(arg);
    if (arg === "--") afterDashes = true;
  }
  return { permissions, rest };
}

/**
 * Parse flags against specs.
 *
 * @throws {UsageError} An unknown flag, a missing value, or a stray argument.
 */
export function parseFlags(
  args: readonly string[],
  specs: readonly FlagSpec[],
  positionals = 0,
): { values: FlagValues; positionals: string[] } {
  const options: Record<
    string,
    { type: "string" | "boolean"; multiple?: boolean; short?: string }
  > = {};
  for (const spec of [...specs, HELP_FLAG]) {
    options[spec.name] = {
      type: spec.type,
      ...(spec.multiple ? { multiple: true } : {}),
      ...(spec.short ? { short: spec.short } : {}),
    };
  }
  // `--flag -5` would read as two flags: keep a negative value with its flag, to be judged as a value.
  const joined: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const name = /^--([a-z][a-z0-9-]*)$/.exec(args[i]!)?.[1];
    const next = args[i + 1];
    if (name && options[name]?.type === "string" && next !== undefined && /^-\d/.test(next)) {
      joined.push(`--${name}=${next}`);
      i++;
    } else joined.push(args[i]!);
  }
  try {
    const parsed = parseArgs({
      args: joined,
      options,
      strict: true,
      allowPositionals: positionals > 0,
    });
    if (parsed.positionals.length > positionals) {
      throw new UsageError(`unexpected argument '${parsed.positionals[positionals]}'`);
    }
    return { values: parsed.values as FlagValues, positionals: parsed.positionals };
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError(
      errorMessage(error).replace(/\. To specify.*$/s, ""),
    );
  }
}

/** Render a help page. */
export function helpText(
  usage: string,
  summary: string,
  groups: [string, readonly FlagSpec[]][],
): string {
  const lines = [`Usage: ${usage}`, "", summary];
  for (const [title, specs] of groups) {
    lines.push("", `${title}:`);
    for (const spec of [...specs]) {
      const left = `  ${spec.short ? `-${spec.short}, ` : ""}--${spec.name}${
        spec.value ? ` ${spec.value}` : ""
      }`;
      const right = `${spec.help}${spec.default ? ` [default: ${spec.default}]` : ""}`;
      lines.push(left.length < 34 ? left.padEnd(34) + right : `${left}\n${"".padEnd(34)}${right}`);
    }
  }
  return lines.join("\n") + "\n";
}

/** A string flag's value, or `undefined`. */
export function str(values: FlagValues, name: string): string | undefined {
  const value = values[name];
  return typeof value === "string" ? value : undefined;
}

/** Bounds of a number flag. */
export interface Bounds {
  /** @default {0} */
  min?: number;
  /** @default {Number.MAX_SAFE_INTEGER} */
  max?: number;
}

/**
 * A whole number flag within bounds.
 *
 * @throws {UsageError} The value is not a whole number, or out of bounds.
 */
export function int(values: FlagValues, name: string, bounds: Bounds = {}): number | undefined {
  const { min = 0, max = Number.MAX_SAFE_INTEGER } = bounds;
  const value = str(values, name);
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^-?\d+$/.test(value.trim()) || n < min || n > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `${min} or more` : `from ${min} to ${max}`;
    throw new UsageError(`--${name} must be a whole number ${range}, not '${value}'`);
  }
  return n;
}

/**
 * A number flag.
 *
 * @throws {UsageError} The value is not a number.
 */
export function num(values: FlagValues, name: string): number | undefined {
  const value = str(values, name);
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n)) {
    throw new UsageError(`--${name} must be a number, not '${value}'`);
  }
  return n;
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Parse a duration such as `500ms`, `90s`, `30m`, `2h` or `7d` (a bare
 * number is seconds) into milliseconds.
 *
 * @throws {UsageError} The text is not a duration.
 */
export function parseDuration(text: string, what: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim());
  if (!match) {
    throw new UsageError(
      `${what} must be a duration such as 500ms, 90s, 30m, 2h or 7d, not '${text}'`,
    );
  }
  return Math.round(Number(match[1]) * UNITS[match[2] ?? "s"]!);
}

/**
 * A duration flag in milliseconds, at least `minMs`.
 *
 * @throws {UsageError} The value is not a duration, or shorter than `minMs`.
 */
export function duration(values: FlagValues, name: string, minMs = 0): number | undefined {
  const value = str(values, name);
  if (value === undefined) return undefined;
  const ms = parseDuration(value, `--${name}`);
  if (ms < minMs) {
    throw new UsageError(
      minMs === 1
        ? `--${name} must be longer than 0, not '${value}'; leave --${name} out for none`
        : `--${name} must be at least ${minMs}ms, not '${value}'`,
    );
  }
  return ms;
}

/**
 * `KEY=VALUE` pairs into an object.
 *
 * @throws {UsageError} A pair has no `=` or an empty key.
 */
export function keyValues(pairs: readonly string[], flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf("=");
    if (at <= 0) throw new UsageError(`--${flag} takes KEY=VALUE, not '${pair}'`);
    out[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return out;
}
