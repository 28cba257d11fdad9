/**
 * Benchmark 1, local overhead: N trivial tasks (x → x²) on the local
 * backend, against the floor (N sequential `deno run` of an empty script),
 * faast.js' local provider and Lithops' localhost executor, all on the same
 * function in the same run. A second table breaks one process-per-task
 * attempt down into its parts.
 *
 * ```sh
 * deno task bench local-overhead [--runs 3] [--before REV]
 * ```
 *
 * @module
 */

import { join } from "node:path";
import type { BenchContext, Benchmark, BenchResult } from "./support/bench.ts";
import { main } from "./support/bench.ts";
import { ensureFaast, ensureLithops } from "./support/alternatives.ts";
import { lastJson, measure } from "./support/process.ts";
import {
  benchModule,
  checkoutRevision,
  hasWarmMode,
  REPO,
  runDriver,
  withTempStorage,
} from "./support/kubeface.ts";
import { fixed, median, ratio } from "./support/stats.ts";
import type { Table } from "./support/table.ts";
import { attemptBreakdown } from "./local_overhead_breakdown.ts";

/** Tasks at once for every system that runs them concurrently (the machine's 2 cores). */
const CONCURRENCY = 2;

/** One run of one system. */
interface Sample {
  /** Wall time of the whole command. */
  wallMs: number;
  /** Time spent on the N calls (from "ready" to the last result). */
  callsMs: number;
  /** User + system CPU of the command and its children. */
  cpuMs: number;
  /** Kubeface only: CPU of the master alone. */
  masterCpuMs?: number;
}

/** A system under test. */
interface Contender {
  label: string;
  mode: string;
  concurrency: number;
  /** Why it cannot run, if it cannot. */
  skip?: string;
  sample(n: number): Promise<Sample>;
}

/** Wait (outside any measurement) until a detached process is gone. */
async function waitForExit(pid: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      await Deno.stat(`/proc/${pid}`);
    } catch {
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function sumOfSquares(n: number): number {
  return ((n - 1) * n * (2 * n - 1)) / 6;
}

function check(what: string, n: number, got: { n?: number; sum?: number; results?: number }) {
  const count = got.n ?? got.results;
  if (count !== n || (got.sum !== undefined && got.sum !== sumOfSquares(n))) {
    throw new Error(`${what} returned wrong results: ${JSON.stringify(got)}`);
  }
}

function floor(concurrency: number): Contender {
  const empty = benchModule("empty.ts");
  const deno = Deno.execPath();
  const one = `'${deno}' run --quiet --no-config '${empty}'`;
  return {
    label: "floor: `deno run` of an empty script",
    mode: concurrency === 1 ? "sequential" : `${concurrency} at a time`,
    concurrency,
    async sample(n) {
      const script = concurrency === 1
        ? `for i in $(seq ${n}); do ${one} || exit 1; done`
        : `seq ${n} | xargs -P ${concurrency} -I{} ${one}`;
      const m = await measure("bash", ["-c", script]);
      if (m.code !== 0) throw new Error(`the floor loop failed: ${m.stderr}`);
      return { wallMs: m.wallMs, callsMs: m.wallMs, cpuMs: m.userMs + m.sysMs };
    },
  };
}

function kubeface(label: string, root: string, warm: boolean): Contender {
  const skip = warm && !hasWarmMode(root)
    ? `${label} warm workers: the local backend has no \`warm\` option yet (lib/backends/local.ts)`
    : undefined;
  return {
    label,
    mode: warm ? "warm workers (`local: { warm: true }`)" : "process per task",
    concurrency: CONCURRENCY,
    skip,
    sample: (n) =>
      withTempStorage(async (storage) => {
        const { measured, report } = await runDriver({
          root,
          module: benchModule("square.ts"),
          count: n,
          storage,
          parallelism: CONCURRENCY,
          warm,
        });
        check(label, n, { results: report.results, sum: report.checksum });
        return {
          wallMs: measured.wallMs,
          callsMs: report.lastMs - report.readyMs,
          cpuMs: measured.userMs + measured.sysMs,
          masterCpuMs: report.selfCpuMs,
        };
      }),
  };
}

async function faast(): Promise<Contender> {
  const installed = await ensureFaast();
  return {
    label: installed.ok ? `faast.js ${installed.version}` : "faast.js",
    mode: "local provider (warm child processes)",
    concurrency: CONCURRENCY,
    skip: installed.ok ? undefined : `faast.js: ${installed.reason}`,
    async sample(n) {
      if (!installed.ok) throw new Error(installed.reason);
      const m = await measure(installed.command, ["faast_local.cjs", String(n), `${CONCURRENCY}`], {
        cwd: installed.dir,
      });
      const out = lastJson<{ callsMs: number; n: number; sum: number }>(m, "faast.js");
      check("faast.js", n, out);
      return { wallMs: m.wallMs, callsMs: out.callsMs, cpuMs: m.userMs + m.sysMs };
    },
  };
}

async function lithops(version: 1 | 2): Promise<Contender> {
  const installed = await ensureLithops();
  return {
    label: installed.ok ? `Lithops ${installed.version}` : "Lithops",
    mode: version === 2
      ? "localhost v2 (default: a Python process per call)"
      : "localhost v1 (one runner forks per call)",
    concurrency: CONCURRENCY,
    skip: installed.ok ? undefined : `Lithops: ${installed.reason}`,
    async sample(n) {
      if (!installed.ok) throw new Error(installed.reason);
      const m = await measure(
        installed.command,
        ["lithops_local.py", String(n), `${CONCURRENCY}`, String(version)],
        { cwd: installed.dir },
      );
      const out = lastJson<{ callsMs: number; n: number; sum: number; cleanerPid?: number }>(
        m,
        "Lithops",
      );
      check("Lithops", n, out);
      if (out.cleanerPid) await waitForExit(out.cleanerPid, 60_000);
      return { wallMs: m.wallMs, callsMs: out.callsMs, cpuMs: m.userMs + m.sysMs };
    },
  };
}

async function contenders(context: BenchContext): Promise<Contender[]> {
  const list = [
    floor(1),
    floor(CONCURRENCY),
    kubeface("kubeface (working tree)", REPO, false),
    kubeface("kubeface (working tree)", REPO, true),
  ];
  if (context.before) {
    const { root, sha } = await checkoutRevision(context.before);
    list.push(kubeface(`kubeface ${sha}`, root, false));
    if (hasWarmMode(root)) list.push(kubeface(`kubeface ${sha}`, root, true));
  }
  list.push(await faast(), await lithops(2), await lithops(1));
  return list;
}

async function run(context: BenchContext): Promise<BenchResult> {
  const n = context.quick ? 40 : 200;
  const all = await contenders(context);
  const skipped = all.flatMap((c) => (c.skip ? [c.skip] : []));
  const active = all.filter((c) => !c.skip);
  const samples = new Map<Contender, Sample[]>(active.map((c) => [c, []]));
  // Interleave the systems run by run, so a change of load hits all of them alike.
  for (let r = 1; r <= context.runs; r++) {
    for (const c of active) {
      context.log(`run ${r}/${context.runs}: ${c.label}, ${c.mode}`);
      const s = await c.sample(n);
      context.log(`  ${fixed(s.callsMs / n, 2)} ms/task, total ${fixed(s.wallMs / 1000, 2)} s`);
      samples.get(c)!.push(s);
    }
  }

  const med = (c: Contender, f: (s: Sample) => number) => median(samples.get(c)!.map(f));
  const faastRow = active.find((c) => c.label.startsWith("faast.js"));
  const faastMs = faastRow && med(faastRow, (s) => s.callsMs / n);
  const rows = active.map((c) => {
    const perTask = med(c, (s) => s.callsMs / n);
    const wall = med(c, (s) => s.wallMs);
    const calls = med(c, (s) => s.callsMs);
    return [
      c.label,
      c.mode,
      String(c.concurrency),
      fixed(perTask, 2),
      fixed(1000 / perTask, 0),
      fixed(calls / 1000, 2),
      fixed((wall - calls) / 1000, 2),
      fixed(wall / 1000, 2),
      fixed(med(c, (s) => s.cpuMs / n), 1),
      ratio(perTask, faastMs),
    ];
  });

  const byLabel = (label: string, mode: string) =>
    active.find((c) => c.label === label && c.mode.startsWith(mode));
  const ppt = byLabel("kubeface (working tree)", "process");
  const warm = byLabel("kubeface (working tree)", "warm");
  const floorSeq = active.find((c) => c.label.startsWith("floor") && c.concurrency === 1);
  const notes = [
    `${n} calls of x → x², concurrency ${CONCURRENCY} (floor also sequential); medians of ${context.runs} runs, systems interleaved run by run.`,
    "ms/task and tasks/s count only the calls: from the moment the system is ready (kubeface: job prepared, i.e. module loaded, bundled, inputs uploaded; faast.js: `faast()` resolved; Lithops: executor created) to the last result. Start-up + teardown is the rest of the command's wall time (process start, imports, bundling, upload, cleanup, exit).",
    "For a trivial task every ms per task is overhead. CPU ms/task is the user + system CPU of the whole command and every process it waited for, divided by the calls.",
    "Lithops deletes its temporary data in a detached process after the executor exits; that process is not counted (not in wall, not in CPU), and the next measurement waits until it is gone.",
    "Ratios compare ms/task (calls) with faast.js measured in the same run; the issue's reference for faast.js on this kind of machine is 1.4 ms per call after 0.6 s of start-up.",
  ];
  for (const row of [ppt, warm]) {
    if (!row) continue;
    const master = med(row, (s) => (s.masterCpuMs ?? NaN) / n);
    const total = med(row, (s) => s.cpuMs / n);
    notes.push(
      `kubeface ${row.mode}: the master process itself used ${fixed(master, 1)} of the ${
        fixed(total, 1)
      } CPU ms per task; the rest is worker processes (and bundling, once).`,
    );
  }
  const tables: Table[] = [{
    title: `Local overhead: ${n} trivial tasks (x → x²)`,
    columns: [
      "System",
      "Mode",
      "Conc.",
      "ms/task (calls)",
      "tasks/s",
      "Calls s",
      "Start-up + teardown s",
      "Total s",
      "CPU ms/task",
      "vs faast.js",
    ],
    rows,
    notes,
  }];

  if (ppt) {
    context.log("breaking one process-per-task attempt down");
    tables.push(
      await attemptBreakdown({
        runs: context.quick ? 3 : 10,
        slotMsPerTask: med(ppt, (s) => (s.callsMs * CONCURRENCY) / n),
        warmSlotMsPerTask: warm && med(warm, (s) => (s.callsMs * CONCURRENCY) / n),
        floorMs: floorSeq && med(floorSeq, (s) => s.wallMs / n),
        log: context.log,
      }),
    );
  }
  return { tables, skipped };
}

/** Benchmark 1: per-task overhead of the local backend against the alternatives. */
export const localOverhead: Benchmark = {
  name: "local-overhead",
  description:
    "200 trivial tasks on the local backend vs the deno-run floor, faast.js local and Lithops localhost",
  run,
};

if (import.meta.main) await main(localOverhead, join("bench", "local_overhead.ts"));
