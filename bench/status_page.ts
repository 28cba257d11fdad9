/**
 * Benchmark status-page: a finished job's status pages at 10,000 and 100,000 tasks (`--quick`:
 * 1,000 and 10,000), built as the master builds them: the size of `status.json` and
 * `status.html`, the time to render the HTML, to load it in headless Chromium and draw every
 * attempt's bar, the page's JavaScript heap, and the wall time of `kubeface status KEY` reading
 * it back from local storage. The job is the status tests' synthetic one
 * (tests/support/statuses.ts: 1 task in 53 crashing once, 1 in 97 failing), on 1,000 slots.
 *
 * ```sh
 * deno task bench status-page
 * ```
 *
 * @module
 */

import { JobLayout } from "../lib/format/layout.ts";
import { renderStatusHtml } from "../lib/status/html.ts";
import { attemptCount } from "../lib/status/page_data.ts";
import { writeStatus } from "../lib/status/status.ts";
import { openStorage } from "../lib/storage/storage.ts";
import { browserUnavailable, openBrowser, openPage, timeline } from "../tests/support/browser.ts";
import { largeStatus } from "../tests/support/statuses.ts";
import type { BenchContext, Benchmark, BenchResult } from "./support/bench.ts";
import { main } from "./support/bench.ts";
import { withTempStorage } from "./support/kubeface.ts";
import { measure } from "./support/process.ts";
import { fixed, median, mib } from "./support/stats.ts";
import type { Table } from "./support/table.ts";

const REPO = new URL("../", import.meta.url).pathname;
/** Slots of the synthetic job: its attempts overlap as a wide job's do. */
const SLOTS = 1_000;

interface Sample {
  renderMs: number;
  loadMs: number;
  drawMs: number;
  heapBytes: number;
  statusCliMs: number;
}

interface Size {
  tasks: number;
  attempts: number;
  jsonBytes: number;
  htmlBytes: number;
  samples: Sample[];
}

async function measureSize(tasks: number, runs: number, log: (line: string) => void) {
  const status = largeStatus(tasks, Math.min(SLOTS, tasks));
  const attempts = attemptCount(status);
  return await withTempStorage(async (dir) => {
    await using storage = await openStorage(dir);
    const layout = new JobLayout(status.job);
    await writeStatus(storage, layout, status);
    const jsonBytes = (await storage.stat(layout.statusJson))!.size;
    const htmlBytes = (await storage.stat(layout.statusHtml))!.size;
    const samples: Sample[] = [];
    for (let run = 1; run <= runs; run++) {
      log(`${tasks} tasks, run ${run} of ${runs}`);
      const rendering = performance.now();
      const html = renderStatusHtml(status);
      const renderMs = performance.now() - rendering;
      await using browser = await openBrowser();
      const page = await browser.newPage();
      const loading = performance.now();
      await openPage(page, dir, html);
      const drawn = await timeline(page, 600_000);
      const loadMs = performance.now() - loading;
      if (drawn.bars !== attempts) {
        throw new Error(`the page drew ${drawn.bars} bars for ${attempts} attempts`);
      }
      const heapBytes = await page.evaluate<number>("performance.memory.usedJSHeapSize");
      const cli = await measure(Deno.execPath(), [
        "run",
        "-A",
        `--config=${REPO}deno.json`,
        `${REPO}cli.ts`,
        "status",
        status.job,
        "--storage",
        dir,
      ]);
      if (cli.code !== 0) throw new Error(`kubeface status failed: ${cli.stderr}`);
      samples.push({ renderMs, loadMs, drawMs: drawn.drawMs, heapBytes, statusCliMs: cli.wallMs });
    }
    return { tasks, attempts, jsonBytes, htmlBytes, samples };
  });
}

async function run(context: BenchContext): Promise<BenchResult> {
  const unavailable = browserUnavailable();
  if (unavailable) return { tables: [], skipped: [`status-page: ${unavailable}`] };
  const sizes: Size[] = [];
  for (const tasks of context.quick ? [1_000, 10_000] : [10_000, 100_000]) {
    sizes.push(await measureSize(tasks, context.runs, context.log));
  }
  const med = (size: Size, field: keyof Sample) => median(size.samples.map((s) => s[field]));
  const table: Table = {
    title: "A finished job's status pages, built as the master builds them",
    columns: [
      "tasks",
      "attempts",
      "status.json",
      "status.html",
      "render HTML",
      "Chromium: load and draw",
      "of which drawing",
      "page JS heap",
      "`kubeface status`",
    ],
    rows: sizes.map((size) => [
      size.tasks.toLocaleString("en"),
      size.attempts.toLocaleString("en"),
      `${mib(size.jsonBytes)} MiB`,
      `${mib(size.htmlBytes)} MiB`,
      `${fixed(med(size, "renderMs"), 0)} ms`,
      `${fixed(med(size, "loadMs") / 1000, 2)} s`,
      `${fixed(med(size, "drawMs"), 0)} ms`,
      `${mib(med(size, "heapBytes"))} MiB`,
      `${fixed(med(size, "statusCliMs"), 0)} ms`,
    ]),
    notes: [
      `Medians of ${context.runs} runs. The job: tests/support/statuses.ts's largeStatus on ${SLOTS} slots (1 task in 53 crashes once, 1 in 97 fails).`,
      "Load and draw: from navigation to the page's timeline script reporting every bar drawn (headless Chromium, software rendering). `kubeface status` is the CLI's wall time, Deno's start included, reading status.json from local storage.",
    ],
  };
  return { tables: [table], skipped: [] };
}

/** The status-page benchmark. */
export const statusPage: Benchmark = {
  name: "status-page",
  description:
    "a job's status pages at 10,000 and 100,000 tasks: sizes, render, Chromium load and draw, `kubeface status`",
  run,
};

if (import.meta.main) await main(statusPage, "bench/status_page.ts");
