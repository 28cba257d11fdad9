// deno-lint-ignore-file no-console
/**
 * Headless Chromium (Debian's `chromium` package) driven over the DevTools
 * protocol, for tests that look at pages the way a person would: a fresh
 * `--user-data-dir` per browser, and no network use beyond the loopback.
 *
 * Where Chromium is missing, browser tests are skipped with a printed
 * reason, and fail when `CI=true`.
 *
 * @module
 */

import { join } from "node:path";
import { type CdpPage, Connection, newPage, type PageOptions } from "./cdp.ts";

/** Where Debian's package puts Chromium. */
export const CHROMIUM = Deno.env.get("KUBEFACE_TEST_CHROMIUM") ?? "/usr/bin/chromium";

/** Flags for a quiet, offline, headless Chromium. */
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Why browser tests cannot run here, or `undefined` when they can. */
export function browserUnavailable(): string | undefined {
  try {
    Deno.statSync(CHROMIUM);
    return undefined;
  } catch {
    return `${CHROMIUM} is missing; install Debian's chromium package (apt-get install -y chromium)`;
  }
}

/** A headless browser, stopped (and its profile removed) on dispose. */
export interface Browser extends AsyncDisposable {
  /** A new page in a new browser context (its own cookies and storage). */
  newPage(options?: PageOptions): Promise<CdpPage>;
}

/** Read the DevTools URL Chromium prints on standard error; keep draining the rest. */
async function devToolsUrl(stderr: ReadableStream<Uint8Array>, timeoutMs: number) {
  const reader = stderr.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  const timer = setTimeout(() => void reader.cancel(), timeoutMs);
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) {
        throw new Error(`Chromium did not print its DevTools URL:\n${text.slice(-2000)}`);
      }
      text += value;
      const url = /DevTools listening on (ws:\/\/\S+)/.exec(text)?.[1];
      if (url) {
        void (async () => {
          while (!(await reader.read().catch(() => ({ done: true }))).done) { /* drain */ }
        })();
        return url;
      }
    }
  } finally {
    clearTimeout(timer);
  }
}

/** Start headless Chromium with a fresh profile and connect to it. */
export async function openBrowser(): Promise<Browser> {
  const profile = await Deno.makeTempDir({ prefix: "kubeface-chromium-" });
  const child = new Deno.Command(CHROMIUM, {
    args: [
      ...CHROMIUM_ARGS,
      `--user-data-dir=${profile}`,
      "--remote-debugging-address=127.0.0.1",
      "--remote-debugging-port=0",
      "about:blank",
    ],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch { /* already gone */ }
    await child.status;
    await Deno.remove(profile, { recursive: true }).catch(() => {});
  };
  let connection: Connection;
  try {
    connection = await Connection.open(await devToolsUrl(child.stderr, 30_000));
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    newPage: (options) => newPage(connection, options),
    async [Symbol.asyncDispose]() {
      await connection.send("Browser.close").catch(() => {});
      connection.close();
      await stop();
    },
  };
}

/** What a browser test gets: a browser and a temporary directory of its own. */
export interface BrowserTestContext {
  browser: Browser;
  /** Removed after the test, unless `KUBEFACE_TEST_KEEP=1`. */
  dir: string;
}

/**
 * Define a test that needs Chromium. It is skipped (with a printed reason)
 * where Chromium is missing, and fails then when `CI=true`.
 */
export function browserTest(name: string, fn: (t: BrowserTestContext) => Promise<void>): void {
  const unavailable = browserUnavailable();
  if (unavailable && Deno.env.get("CI") !== "true") {
    console.log(`skipping "${name}": ${unavailable}`);
    Deno.test({ name, ignore: true, fn() {} });
    return;
  }
  Deno.test({
    name,
    sanitizeResources: false,
    sanitizeOps: false,
    async fn() {
      if (unavailable) throw new Error(`CI=true but ${unavailable}`);
      const dir = await Deno.makeTempDir({ prefix: "kubeface-browser-test-" });
      try {
        await using browser = await openBrowser();
        await fn({ browser, dir });
      } finally {
        if (Deno.env.get("KUBEFACE_TEST_KEEP") === "1") console.log(`kept ${dir}`);
        else await Deno.remove(dir, { recursive: true }).catch(() => {});
      }
    },
  });
}

/** Write a page into `dir` and open it from there. */
export async function openPage(page: CdpPage, dir: string, html: string): Promise<void> {
  const path = join(dir, "status.html");
  await Deno.writeTextFile(path, html);
  await page.goto(`file://${path}`);
}

/** What a status page's script tells about the timeline it drew. */
export interface Timeline {
  /** Bars drawn: one per attempt. */
  bars: number;
  rows: number;
  /** Milliseconds the page's script spent drawing. */
  drawMs: number;
}

/** Wait for a status page to have drawn its timeline, and return what it tells about it. */
export async function timeline(page: CdpPage, timeoutMs = 10_000): Promise<Timeline> {
  return await page.waitFor<Timeline>("globalThis.kubefaceTimeline", timeoutMs);
}
