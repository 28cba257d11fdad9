// deno-lint-ignore-file no-console
/**
 * What a benchmark is, and how one runs: print its tables, then append them
 * with the exact command, the machine and the load average to
 * bench/RESULTS.md.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { appendSection, loadAverage, revision, type Section } from "./results.ts";
import { renderTable, type Table } from "./table.ts";

/** Options every benchmark gets. */
export interface BenchContext {
  /** Runs per figure; the tables show medians. @default {3} */
  runs: number;
  /** Smaller sizes, for a smoke test; nothing is appended to RESULTS.md. */
  quick: boolean;
  /** A git revision to measure next to the working tree (local-overhead). */
  before: string | undefined;
  /** Print a progress line. */
  log(line: string): void;
}

/** What a benchmark found. */
export interface BenchResult {
  tables: Table[];
  /** Comparisons that could not run, each with its reason. */
  skipped: string[];
}

/** A benchmark script. */
export interface Benchmark {
  /** Name on the command line, e.g. `local-overhead`. */
  name: string;
  /** One line for `--help`. */
  description: string;
  run(context: BenchContext): Promise<BenchResult>;
}

/** Flags shared by bench/run.ts and every benchmark file run on its own. */
export const FLAGS = {
  runs: { type: "string", default: "3" },
  quick: { type: "boolean", default: false },
  "no-record": { type: "boolean", default: false },
  before: { type: "string" },
  help: { type: "boolean", short: "h", default: false },
} as const;

/** The parsed flags and benchmark names of a command line. */
export function parseCommandLine(args: string[]): {
  context: Omit<BenchContext, "log">;
  record: boolean;
  help: boolean;
  names: string[];
} {
  const { values, positionals } = parseArgs({ args, options: FLAGS, allowPositionals: true });
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) {
    throw new RangeError(`Cannot use --runs ${values.runs}: give a positive integer`);
  }
  return {
    context: { runs, quick: values.quick, before: values.before },
    record: !values["no-record"] && !values.quick,
    help: values.help,
    names: positionals,
  };
}

/**
 * Run one benchmark: print its tables and, when `record`, append them to
 * bench/RESULTS.md under `command`.
 */
export async function runBenchmark(
  benchmark: Benchmark,
  context: Omit<BenchContext, "log">,
  options: { record: boolean; command: string },
): Promise<Section> {
  const log = (line: string) => console.error(`[${benchmark.name}] ${line}`);
  const loadBefore = loadAverage();
  log(`starting (load average ${loadBefore})`);
  const result = await benchmark.run({ ...context, log });
  const section: Section = {
    benchmark: benchmark.name + (context.quick ? " (quick)" : ""),
    command: options.command,
    loadBefore,
    loadAfter: loadAverage(),
    tables: result.tables,
    skipped: result.skipped,
    revision: await revision(),
  };
  for (const reason of result.skipped) console.log(`skipped: ${reason}`);
  for (const table of result.tables) console.log("\n" + renderTable(table));
  if (options.record) {
    await appendSection(section);
    log("appended to bench/RESULTS.md");
  }
  return section;
}

/** The exact command line of this process, for RESULTS.md. */
export function commandLine(prefix: string): string {
  return [prefix, ...Deno.args.map((a) => /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a}'`)].join(" ")
    .trim();
}

/** `import.meta.main` entry of a benchmark file run on its own. */
export async function main(benchmark: Benchmark, file: string): Promise<void> {
  const { context, record, help } = parseCommandLine(Deno.args);
  if (help) {
    console.log(`${benchmark.name}: ${benchmark.description}`);
    console.log(`usage: deno run -A ${file} [--runs N] [--quick] [--no-record] [--before REV]`);
    return;
  }
  await runBenchmark(benchmark, context, {
    record,
    command: commandLine(`deno run -A ${file}`),
  });
}
