/**
 * Where one process-per-task attempt of the local backend spends its time:
 * Deno's start-up, the project config, loading worker.ts, and the attempt
 * itself split by the worker's own records (before the task, the task, after
 * it). Attempts run one at a time against a prepared job.
 *
 * @module
 */

import { join } from "node:path";
import { JobLayout } from "../lib/format/layout.ts";
import type { ResultHeader } from "../lib/format/manifest.ts";
import { readHeader } from "../lib/format/records.ts";
import { openStorage } from "../lib/storage/storage.ts";
import { lastJson, measure } from "./support/process.ts";
import { benchModule, REPO, runDriver, withTempStorage } from "./support/kubeface.ts";
import { fixed, median } from "./support/stats.ts";
import type { Table } from "./support/table.ts";

/** Options of {@linkcode attemptBreakdown}. */
export interface BreakdownOptions {
  /** Attempts (and runs of each step) to take the median of. */
  runs: number;
  /** Slot time per task of a process-per-task job (concurrency × ms/task), from table 1. */
  slotMsPerTask: number | undefined;
  /** The same in warm mode, if measured. */
  warmSlotMsPerTask: number | undefined;
  /** The floor's ms per `deno run`, from table 1. */
  floorMs: number | undefined;
  log(line: string): void;
}

interface Step {
  wallMs: number;
  cpuMs: number;
  beforeTaskMs?: number;
  taskMs?: number;
  afterTaskMs?: number;
}

/** Measure the parts of one attempt; returns a table. */
export function attemptBreakdown(options: BreakdownOptions): Promise<Table> {
  return withTempStorage(async (storage) => {
    const deno = Deno.execPath();
    const config = `--config=${join(REPO, "deno.json")}`;
    const worker = join(REPO, "worker.ts");
    const { report } = await runDriver({
      module: benchModule("square.ts"),
      count: 2,
      storage,
      parallelism: 1,
    });
    const job = report.job;
    const layout = new JobLayout(job);
    await using store = await openStorage(storage);

    const workerFlags = ["--no-check", "--no-prompt", "--quiet", "--unstable-worker-options"];
    const steps: { label: string; run: (i: number) => Promise<Step> }[] = [
      {
        label: "`deno run --no-config` of an empty script",
        run: async () => {
          const m = await measure(deno, ["run", "--quiet", "--no-config", benchModule("empty.ts")]);
          return { wallMs: m.wallMs, cpuMs: m.userMs + m.sysMs };
        },
      },
      {
        label: "the same with the project's deno.json (as workers run)",
        run: async () => {
          const m = await measure(deno, ["run", "--quiet", config, benchModule("empty.ts")], {
            cwd: REPO,
          });
          return { wallMs: m.wallMs, cpuMs: m.userMs + m.sysMs };
        },
      },
      {
        label: "an empty script importing node:path, url, util and v8 (as worker.ts does)",
        run: async () => {
          const m = await measure(
            deno,
            ["run", "--quiet", config, benchModule("node_builtins.ts")],
            {
              cwd: REPO,
            },
          );
          return { wallMs: m.wallMs, cpuMs: m.userMs + m.sysMs };
        },
      },
      {
        label: "worker.ts loading its static imports, then exiting (no arguments)",
        run: async () => {
          const m = await measure(deno, ["run", ...workerFlags, config, "-A", worker], {
            cwd: REPO,
          });
          return { wallMs: m.wallMs, cpuMs: m.userMs + m.sysMs };
        },
      },
      {
        label: "one whole attempt: `deno run worker.ts --task 0` against local storage",
        run: async (i) => {
          const scratch = await Deno.makeTempDir({ prefix: "kubeface-bench-scratch-" });
          const attempt = `bench-${Date.now()}-${i}`;
          // Workers skip a task that already has a result: clear task 0's results first.
          for await (const { key } of store.list(layout.taskResults(0))) await store.delete(key);
          try {
            const spawned = Date.now();
            const m = await measure(deno, [
              "run",
              ...workerFlags,
              config,
              "-A",
              worker,
              ...["--storage", storage, "--job", job, "--scratch", scratch],
              ...["--task", "0", "--attempt", attempt, "--permissions", "{}"],
            ], { cwd: REPO });
            if (m.code !== 0) throw new Error(`the worker failed (exit ${m.code}): ${m.stderr}`);
            const header = await readHeader<ResultHeader>(
              await store.get(layout.result(0, attempt, "ok")),
              "bench result",
            );
            const started = Date.parse(header.startedAt);
            const ended = Date.parse(header.endedAt);
            return {
              wallMs: m.wallMs,
              cpuMs: m.userMs + m.sysMs,
              beforeTaskMs: started - spawned,
              taskMs: ended - started,
              afterTaskMs: spawned + m.wallMs - ended,
            };
          } finally {
            await Deno.remove(scratch, { recursive: true }).catch(() => {});
          }
        },
      },
    ];

    const results = new Map<string, Step[]>(steps.map((s) => [s.label, []]));
    for (let i = 0; i < options.runs; i++) {
      for (const step of steps) results.get(step.label)!.push(await step.run(i));
    }
    options.log(`measured ${options.runs} runs of ${steps.length} steps`);
    const med = (label: string, f: (s: Step) => number | undefined) => {
      const values = results.get(label)!.map(f).filter((v): v is number => v !== undefined);
      return values.length ? median(values) : undefined;
    };
    const rows = steps.map(({ label }) => [
      label,
      fixed(med(label, (s) => s.wallMs), 1),
      fixed(med(label, (s) => s.cpuMs), 1),
      fixed(med(label, (s) => s.beforeTaskMs), 1),
      fixed(med(label, (s) => s.taskMs), 1),
      fixed(med(label, (s) => s.afterTaskMs), 1),
    ]);
    const threads = await threadStarts(options.runs);
    rows.push(
      [
        "in-process: start an empty permission-limited Worker thread",
        fixed(threads.empty, 1),
        "–",
        "–",
        "–",
        "–",
      ],
      [
        "in-process: start the task thread (lib/worker/task_thread.ts)",
        fixed(threads.taskThread, 1),
        "–",
        "–",
        "–",
        "–",
      ],
    );
    const attemptLabel = steps[4]!.label;
    const attemptMs = med(attemptLabel, (s) => s.wallMs);
    if (options.slotMsPerTask !== undefined) {
      rows.push([
        "a slot per task in a process-per-task job (concurrency × ms/task, first table)",
        fixed(options.slotMsPerTask, 1),
        "–",
        "–",
        "–",
        "–",
      ]);
      if (attemptMs !== undefined) {
        rows.push([
          "  minus one attempt alone: contention for the 2 cores, and the master's work per task",
          fixed(options.slotMsPerTask - attemptMs, 1),
          "–",
          "–",
          "–",
          "–",
        ]);
      }
    }
    if (options.warmSlotMsPerTask !== undefined) {
      rows.push([
        "a slot per task with warm workers (concurrency × ms/task, first table)",
        fixed(options.warmSlotMsPerTask, 1),
        "–",
        "–",
        "–",
        "–",
      ]);
    }
    const emptyMs = med(steps[0]!.label, (s) => s.wallMs);
    const configMs = med(steps[1]!.label, (s) => s.wallMs);
    const builtinsMs = med(steps[2]!.label, (s) => s.wallMs);
    const graphMs = med(steps[3]!.label, (s) => s.wallMs);
    const before = med(attemptLabel, (s) => s.beforeTaskMs);
    const after = med(attemptLabel, (s) => s.afterTaskMs);
    const notes = [
      `Each step run ${options.runs} times, one at a time (no concurrency), interleaved; medians. Wall ms is from spawn to exit as the parent sees it.`,
      "Before/after task: from spawning the worker to the task's own start time in its result record, and from the task's end time to the process's exit (result write, thread and process teardown). Clocks: the parent's Date.now() and the worker's, same machine.",
      `Reading the rows: Deno start-up ${fixed(emptyMs, 0)} ms; the project config adds ${
        fixed((configMs ?? NaN) - (emptyMs ?? NaN), 0)
      } ms; the node: built-ins alone add ${
        fixed((builtinsMs ?? NaN) - (configMs ?? NaN), 0)
      } ms, and worker.ts's whole module graph ${
        fixed((graphMs ?? NaN) - (configMs ?? NaN), 0)
      } ms; the rest of the time before the task (manifest, bundle fetch and hash, input read, task thread start, bundle import) is ${
        fixed((before ?? NaN) - (graphMs ?? NaN), 0)
      } ms, of which starting the task thread is about ${
        fixed(threads.taskThread, 0)
      } ms (an empty thread ${fixed(threads.empty, 0)} ms); after the task ${fixed(after, 0)} ms.`,
    ];
    if (options.floorMs !== undefined) {
      notes.push(
        `The floor of table 1 (sequential loop) came to ${fixed(options.floorMs, 1)} ms per run.`,
      );
    }
    return {
      title: "Where one process-per-task attempt spends its time (ms)",
      columns: ["Step", "Wall ms", "CPU ms", "Before task", "Task", "After task"],
      rows,
      notes,
    };
  });
}

/** Median times to start an empty thread and the task thread, in one process. */
async function threadStarts(runs: number): Promise<{ empty: number; taskThread: number }> {
  const m = await measure(Deno.execPath(), [
    "run",
    "-A",
    "--unstable-worker-options",
    `--config=${join(REPO, "deno.json")}`,
    join(REPO, "bench", "drivers", "thread_start.ts"),
    String(Math.max(runs, 5)),
  ], { cwd: REPO });
  const out = lastJson<{ empty: number[]; taskThread: number[] }>(m, "the thread start driver");
  return { empty: median(out.empty), taskThread: median(out.taskThread) };
}
