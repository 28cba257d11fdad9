/**
 * Where figures go: the machine they were measured on, and the section a
 * benchmark appends to bench/RESULTS.md with the exact command.
 *
 * @module
 */

import { renderTable, type Table } from "./table.ts";

/** The file every benchmark appends to. */
export const RESULTS_FILE = new URL("../RESULTS.md", import.meta.url);

/** What the figures were measured on. */
export interface Machine {
  /** Logical CPUs. */
  cpus: number;
  /** CPU model, from /proc/cpuinfo. */
  cpuModel: string;
  /** Total memory in bytes. */
  memoryBytes: number;
  /** Deno version. */
  deno: string;
  /** Kernel release. */
  kernel: string;
}

/** Describe this machine. */
export function machine(): Machine {
  let cpuModel = "unknown";
  try {
    const info = Deno.readTextFileSync("/proc/cpuinfo");
    cpuModel = /^model name\s*:\s*(.*)$/m.exec(info)?.[1]?.trim() ?? cpuModel;
  } catch { /* not Linux */ }
  return {
    cpus: navigator.hardwareConcurrency,
    cpuModel,
    memoryBytes: Deno.systemMemoryInfo().total,
    deno: Deno.version.deno,
    kernel: Deno.osRelease(),
  };
}

/** The 1, 5 and 15 minute load averages, as `1.91 2.01 1.70`. */
export function loadAverage(): string {
  return Deno.loadavg().map((n) => n.toFixed(2)).join(" ");
}

/** One line describing the machine. */
export function describeMachine(m: Machine = machine()): string {
  return `${m.cpus} CPUs (${m.cpuModel}), ${(m.memoryBytes / 2 ** 30).toFixed(1)} GiB, ` +
    `Deno ${m.deno}, Linux ${m.kernel}`;
}

/** A benchmark's outcome, as appended to bench/RESULTS.md. */
export interface Section {
  /** Benchmark name, e.g. `local-overhead`. */
  benchmark: string;
  /** The exact command that produced it. */
  command: string;
  /** Load averages when it started and ended. */
  loadBefore: string;
  loadAfter: string;
  /** Its tables. */
  tables: Table[];
  /** Comparisons that could not run, each with the reason. */
  skipped?: string[];
  /** The git revision of the checkout, with `+dirty` when it has changes. */
  revision?: string;
}

/** The checkout's revision, e.g. `ef90407+dirty`, or "unknown". */
export async function revision(): Promise<string> {
  const git = async (...args: string[]) => {
    const out = await new Deno.Command("git", {
      args,
      cwd: new URL("..", import.meta.url),
      stdout: "piped",
      stderr: "null",
    }).output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : undefined;
  };
  try {
    const head = await git("rev-parse", "--short", "HEAD");
    if (!head) return "unknown";
    const dirty = await git("status", "--porcelain", "--untracked-files=no");
    return dirty ? `${head}+dirty` : head;
  } catch {
    return "unknown";
  }
}

/** Render a section as Markdown. */
export function renderSection(section: Section, at: Date = new Date()): string {
  const lines = [
    `## ${section.benchmark} — ${at.toISOString().replace(/\.\d+Z$/, "Z")}`,
    "",
    `- Command: \`${section.command}\``,
    `- Machine: ${describeMachine()}`,
    `- Revision: ${section.revision ?? "unknown"}`,
    `- Load average (1/5/15 min): ${section.loadBefore} before, ${section.loadAfter} after`,
    ...(section.skipped ?? []).map((reason) => `- Skipped: ${reason}`),
    "",
  ];
  for (const table of section.tables) lines.push(renderTable(table));
  return lines.join("\n") + "\n";
}

/** Append a section to bench/RESULTS.md, creating the file with a preamble if needed. */
export async function appendSection(section: Section, file: URL = RESULTS_FILE): Promise<void> {
  let exists = true;
  try {
    await Deno.stat(file);
  } catch {
    exists = false;
  }
  const preamble = exists ? "" : [
    "# Benchmark results",
    "",
    "Appended by `deno task bench` (see bench/run.ts). Each section says the exact command,",
    "the machine, the revision and the load average; figures are medians of the runs named in",
    "each table, and every ratio compares figures measured in the same run.",
    "",
    "",
  ].join("\n");
  await Deno.writeTextFile(file, preamble + renderSection(section), { append: true });
}
