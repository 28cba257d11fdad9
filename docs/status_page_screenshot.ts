// deno-lint-ignore-file no-console
/**
 * Makes `docs/status-page.png`, the screenshot in README.md: maps
 * `examples/varied.ts` (40 tasks of 1 to 8 seconds, one throwing, one
 * hanging past a 10 s time limit) on the local backend with parallelism 4,
 * then opens the job's status page in headless Chromium (Debian's
 * `chromium` package).
 *
 * ```sh
 * deno run -A docs/status_page_screenshot.ts
 * ```
 *
 * @module
 */

import { Client } from "../mod.ts";
import { openBrowser } from "../tests/support/browser.ts";

const out = new URL("./status-page.png", import.meta.url).pathname;
const storage = await Deno.makeTempDir({ prefix: "kubeface-screenshot-" });
try {
  const run = new Client({ storage }).map(new URL("../examples/varied.ts", import.meta.url), {
    job: "varied-demo",
    parallelism: 4,
    failFast: false,
    timeoutMs: 10_000,
    maxRetries: 1,
    onStart: (info) => console.log(`running job ${info.job}; status page ${info.status.html}`),
  });
  try {
    for await (const _ of run) { /* wait for every task */ }
  } catch (error) {
    console.log(`the job failed, as it should: ${error instanceof Error ? error.message : error}`);
  }
  await using browser = await openBrowser();
  const page = await browser.newPage({ width: 1280, height: 900 });
  await page.goto(`file://${storage}/jobs/varied-demo/status.html`);
  await page.waitFor("globalThis.kubefaceTimeline");
  await page.screenshot(out, { fullPage: true });
  console.log(`wrote ${out}`);
} finally {
  await Deno.remove(storage, { recursive: true });
}
