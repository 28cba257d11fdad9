// deno-lint-ignore-file no-console
/**
 * The HTML status page, looked at in headless Chromium: counts, failures,
 * the timeline (one bar per attempt) and the histogram, for a hand-built job
 * of every outcome, a 10,000-task job and a real local run; and
 * `kubeface status --serve`, which serves it live.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { JobLayout } from "../lib/format/layout.ts";
import { readStatus } from "../lib/catalog.ts";
import { renderStatusHtml } from "../lib/status/html.ts";
import { attemptCount } from "../lib/status/page_data.ts";
import { serveStatus } from "../lib/status/serve.ts";
import type { JobStatus } from "../lib/format/status.ts";
import { writeStatus } from "../lib/status/status.ts";
import { openStorage } from "../lib/storage/storage.ts";
import { Client } from "../mod.ts";
import { browserTest, openPage, timeline } from "./support/browser.ts";
import type { CdpPage } from "./support/cdp.ts";
import { kubeface } from "./support/cli.ts";
import { example, failure, waitFor } from "./support/jobs.ts";
import { largeStatus, mixedStatus, TASK_ERROR_MESSAGE } from "./support/statuses.ts";

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

async function attribute(page: CdpPage, selector: string, name: string): Promise<string | null> {
  return await page.evaluate<string | null>(
    `document.querySelector(${JSON.stringify(selector)})?.getAttribute(${JSON.stringify(name)})`,
  );
}

/** Bars drawn, as the timeline canvas tells. */
async function bars(page: CdpPage): Promise<number> {
  await timeline(page);
  return Number(await attribute(page, "#timeline", "data-bars"));
}

/** The number shown in a summary tile. */
async function count(page: CdpPage, name: string): Promise<string> {
  return await page.evaluate<string>(
    `document.querySelector('[data-count="${name}"] dd').innerText.trim()`,
  );
}

async function elements(page: CdpPage, selector: string): Promise<number> {
  return await page.evaluate<number>(
    `document.querySelectorAll(${JSON.stringify(selector)}).length`,
  );
}

async function assertPng(path: string): Promise<void> {
  const bytes = await Deno.readFile(path);
  assert.ok(bytes.length > 1000, `${path} is only ${bytes.length} bytes`);
  assert.deepEqual([...bytes.subarray(0, 8)], PNG_SIGNATURE, `${path} is not a PNG`);
}

Deno.test("renderStatusHtml() embeds the status so that no task's text can end its script element", () => {
  const status = mixedStatus();
  const evil = "</script><script>alert(1)</script><!--";
  status.tasks[2]!.error = evil;
  const html = renderStatusHtml(status);
  assert.equal(html.split("</script>").length - 1, 2, "only the page's own two scripts close");
  const json = /<script type="application\/json" id="kubeface-status">(.*?)<\/script>/s.exec(html);
  assert.ok(json, "the status is embedded");
  assert.deepEqual(JSON.parse(json[1]!), status);
  assert.ok(html.includes("&#60;/script&#62;&#60;script&#62;alert(1)"), "the table escapes it");
});

Deno.test("renderStatusHtml() keeps the page of a running job live and a finished one still", () => {
  const status = mixedStatus();
  assert.doesNotMatch(renderStatusHtml(status), /http-equiv="refresh"/);
  assert.match(
    renderStatusHtml({ ...status, phase: "running" }),
    /<noscript><meta http-equiv="refresh" content="30"><\/noscript>/,
    "without JavaScript, a running job's page reloads itself",
  );
});

Deno.test("renderStatusHtml() lists the unfinished tasks' last checkpoints, newest first", () => {
  const status = mixedStatus();
  assert.match(renderStatusHtml(status), /No unfinished task has a checkpoint\./);
  status.phase = "interrupted";
  status.tasks[7] = {
    ...status.tasks[7]!,
    phase: "pending",
    checkpointAt: "2026-03-01T09:05:00.000Z",
  };
  status.tasks[6] = {
    ...status.tasks[6]!,
    phase: "running",
    checkpointAt: "2026-03-01T09:07:30.000Z",
    attempts: [{
      ...status.tasks[6]!.attempts[0]!,
      outcome: "disrupted",
      detail: "stopped by SIGTERM",
    }],
  };
  const html = renderStatusHtml(status);
  const section = /<section id="checkpoints">(.*?)<\/section>/s.exec(html)?.[1] ?? "";
  assert.match(section, /2 unfinished task\(s\) with one/);
  assert.deepEqual([...section.matchAll(/data-task="(\d+)"/g)].map((m) => m[1]), ["6", "7"]);
  assert.match(
    section,
    /<td>running<\/td><td class=num>1<\/td><td><time datetime="2026-03-01T09:07:30.000Z">2026-03-01 09:07:30Z<\/time>/,
  );
  assert.match(html, /<li><i style="background:#c9a227"><\/i>disrupted<\/li>/, "the legend");
});

browserTest(
  "the status page of a finished job shows its counts, its failures and one timeline bar per attempt",
  async ({ browser, dir }) => {
    const status = mixedStatus();
    const page = await browser.newPage();
    await openPage(page, dir, renderStatusHtml(status));
    assert.equal(attemptCount(status), 12);
    assert.equal(await bars(page), 12, "one bar per attempt");
    assert.equal((await timeline(page)).rows, 3, "one row per worker slot: the parallelism");
    assert.equal(await attribute(page, "#histogram", "data-attempts"), "12", "every ended run");
    assert.deepEqual(page.errors, []);

    const expected = {
      total: "8",
      pending: "0",
      running: "0",
      done: "6",
      failed: "2",
      reused: "1",
      retried: "4",
      speculative: "1",
    };
    for (const [name, value] of Object.entries(expected)) {
      assert.equal(await count(page, name), value, `count of ${name}`);
    }
    assert.ok(await page.hasVisibleText(TASK_ERROR_MESSAGE, "#failed td"), "the task error");
    assert.ok(await page.hasVisibleText("crashed 3 times: out of memory", "#failed td"));
    assert.equal(await elements(page, '#failed a[href="logs/2/a2.log"]'), 1, "a link to its log");
    assert.equal(await elements(page, '#failed a[href="results/2/a2.error"]'), 1, "its result");

    await page.hover("#timeline", 300, 14);
    assert.match(
      await page.evaluate<string>(`document.querySelector(".tip").innerText`),
      /task \d+ · attempt \d/,
      "hovering a bar explains it",
    );
    await page.evaluate(`document.querySelector('button[data-rows="tasks"]').click()`);
    const byTask = await timeline(page);
    assert.deepEqual([byTask.rows, byTask.bars], [7, 12], "one row per task that ran");

    const png = join(dir, "mixed.png");
    await page.screenshot(png, { fullPage: true });
    await assertPng(png);
  },
);

browserTest(
  "the status page reads without JavaScript: counts, failed tasks and slowest tasks",
  async ({ browser, dir }) => {
    const page = await browser.newPage({ javaScriptEnabled: false });
    await openPage(page, dir, renderStatusHtml(mixedStatus()));
    assert.equal(await count(page, "failed"), "2");
    assert.equal(await count(page, "done"), "6");
    assert.ok(await page.hasVisibleText(TASK_ERROR_MESSAGE, "#failed td"));
    assert.equal(await elements(page, "#slowest tbody tr"), 7, "every task that ran");
    assert.ok(await page.hasVisibleText("median 5.0s", "#histogram-section h2"));
    assert.equal(await attribute(page, "#timeline", "data-bars"), "0", "nothing drawn");
    assert.equal(await page.evaluate("typeof globalThis.kubefaceTimeline"), "undefined");
  },
);

browserTest(
  "the status page of a 10,000-task job loads and draws every bar within 30 s",
  async ({ browser, dir }) => {
    const status = largeStatus(10_000, 200);
    const rendering = performance.now();
    const html = renderStatusHtml(status);
    const renderMs = performance.now() - rendering;
    const page = await browser.newPage();
    const loading = performance.now();
    await openPage(page, dir, html);
    const { bars: drawn, drawMs } = await timeline(page, 30_000);
    const loadMs = performance.now() - loading;
    console.log(
      `10,000 tasks (${attemptCount(status)} attempts, ${
        (html.length / 2 ** 20).toFixed(1)
      } MiB page): rendered in ${renderMs.toFixed(0)} ms, loaded and drawn in ${
        loadMs.toFixed(0)
      } ms (timeline ${drawMs.toFixed(0)} ms)`,
    );
    assert.ok(loadMs < 30_000, `took ${loadMs} ms`);
    assert.equal(drawn, attemptCount(status));
    assert.equal(await bars(page), attemptCount(status));
    assert.deepEqual(page.errors, []);
    assert.equal(await elements(page, "#failed tbody tr"), 100, "the failed table is capped");
    assert.equal(await elements(page, "#slowest tbody tr"), 20);
    const png = join(dir, "large.png");
    await page.screenshot(png);
    await assertPng(png);
  },
);

/** Map `examples/varied.ts` over quick samples, sample 6 failing; returns the status. */
async function realRun(storage: string, job: string, samples = 10): Promise<JobStatus> {
  const inputs = Array.from({ length: samples }, (_, id) => ({
    id,
    seconds: 0.05 + (id % 4) * 0.1,
    fail: id === 6,
  }));
  const run = new Client({ storage }).map(example("varied.ts"), {
    inputs,
    job,
    parallelism: 3,
    failFast: false,
    speculationPercent: 0,
  });
  const error = await failure(run);
  assert.match(String(error), /Sample 6 has no readings/);
  await using s = await openStorage(storage);
  return await readStatus(s, job);
}

browserTest(
  "the status page of a real local run shows one bar per attempt and the failed task's error",
  async ({ browser, dir }) => {
    const storage = join(dir, "storage");
    const status = await realRun(storage, "real-run");
    assert.equal(status.phase, "failed");
    const page = await browser.newPage();
    await page.goto(`file://${storage}/${new JobLayout("real-run").statusHtml}`);
    assert.equal(await bars(page), attemptCount(status));
    assert.deepEqual(page.errors, []);
    assert.equal(await count(page, "done"), "9");
    assert.equal(await count(page, "failed"), "1");
    assert.ok(await page.hasVisibleText("RangeError: Sample 6 has no readings", "#failed td"));
    const log = await attribute(page, "#failed a", "href");
    assert.ok(log, "the failed task links its log");
    assert.ok((await Deno.stat(join(storage, "jobs", "real-run", log))).isFile, "the log exists");
    const png = join(dir, "real-run.png");
    await page.screenshot(png, { fullPage: true });
    await assertPng(png);
  },
);

Deno.test({
  name: "kubeface status --serve serves the page, status.json and logs on 127.0.0.1 until Ctrl-C",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "kubeface-serve-test-" });
    try {
      const status = await realRun(dir, "served", 7);
      const child = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "--quiet",
          new URL("../cli.ts", import.meta.url).pathname,
          "status",
          "served",
          "--storage",
          dir,
          "--serve",
          "--port",
          "0",
        ],
        env: { NO_COLOR: "1" },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let printed = "";
      const url = await waitFor("the URL", async () => {
        const { value, done } = await lines.read();
        if (done) throw new Error(`the server stopped early: ${printed}`);
        printed += value;
        return /at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(printed)?.[1];
      });
      try {
        const page = await fetch(url);
        assert.equal(page.status, 200);
        assert.match(page.headers.get("content-type") ?? "", /^text\/html/);
        const html = await page.text();
        assert.match(html, /<canvas id="timeline"/);
        assert.match(html, /Sample 6 has no readings/);

        const json = await fetch(new URL("status.json", url));
        assert.equal(json.status, 200);
        const served = (await json.json()) as JobStatus;
        assert.equal(served.job, "served");
        assert.equal(served.counts.done, 6);

        const attempt = status.tasks[6]!.attempts[0]!.id;
        const log = await fetch(new URL(`logs/6/${attempt}.log`, url));
        assert.equal(log.status, 200);
        await log.body?.cancel();
        const missing = await fetch(new URL("manifest.json", url));
        assert.equal(missing.status, 404, "only the page, its data, logs and results are served");
        await missing.body?.cancel();
      } finally {
        child.kill("SIGINT");
      }
      const { code } = await child.status;
      await lines.cancel();
      const stderr = await new Response(child.stderr).text();
      assert.equal(code, 0, stderr);
      assert.match(stderr, /press Ctrl-C to stop/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("kubeface status exits 2 when --port comes without --serve", async () => {
  const r = await kubeface(["status", "some-job", "--port", "8080"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^kubeface status: --port needs --serve/);
});

browserTest(
  "a served page of a running job refreshes itself, and stops once the job is done",
  async ({ browser, dir }) => {
    await using storage = await openStorage(join(dir, "storage"));
    const layout = new JobLayout("mixed-outcomes");
    const finished = mixedStatus();
    const running: JobStatus = {
      ...finished,
      phase: "running",
      counts: { ...finished.counts, done: 4, running: 2, failed: 0, etaMs: 9000 },
    };
    await writeStatus(storage, layout, running);
    await using server = await serveStatus(storage, layout.key, { refreshMs: 50 });
    const page = await browser.newPage();
    await page.goto(server.url);
    assert.equal(await count(page, "done"), "4");
    assert.equal(await attribute(page, "body", "data-phase"), "running");

    await writeStatus(storage, layout, finished);
    await page.waitFor(
      `document.querySelector('[data-count="done"] dd')?.textContent === "6"`,
      15_000,
    );
    assert.equal(await attribute(page, "body", "data-phase"), "failed");
    assert.equal(await bars(page), 12, "redrawn from the new status");

    const seen = page.requests.length;
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    assert.deepEqual(page.requests.slice(seen), [], "no more refreshes once the job failed");
    assert.deepEqual(page.errors, []);
  },
);
