/**
 * A small Chrome DevTools Protocol client: just enough to open pages in
 * headless Chromium, run script in them, move the mouse and take
 * screenshots. It only needs `--allow-run` and `--allow-net` (playwright-core
 * needs `--allow-all` under Deno: it reads `/proc/sys` when it loads).
 *
 * @module
 */

/** A DevTools message: a reply (with `id`) or an event (with `method`). */
interface Message {
  id?: number;
  method?: string;
  params?: Record<string, unknown>;
  result?: unknown;
  error?: { message: string };
  sessionId?: string;
}

/** One WebSocket to the browser; pages are sessions on it. */
export class Connection {
  readonly #ws: WebSocket;
  #next = 0;
  readonly #pending = new Map<number, PromiseWithResolvers<unknown> & { method: string }>();
  readonly #listeners = new Set<(message: Message) => void>();

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.onmessage = (event) => {
      const message = JSON.parse(String(event.data)) as Message;
      if (message.id !== undefined) {
        const pending = this.#pending.get(message.id);
        this.#pending.delete(message.id);
        if (message.error) {
          pending?.reject(new Error(`${pending.method}: ${message.error.message}`));
        } else pending?.resolve(message.result);
      } else {
        for (const listener of this.#listeners) listener(message);
      }
    };
    ws.onclose = () => {
      for (const pending of this.#pending.values()) {
        pending.reject(new Error(`${pending.method}: the browser closed the connection`));
      }
      this.#pending.clear();
    };
  }

  /** Connect to a browser's DevTools WebSocket URL. */
  static async open(url: string): Promise<Connection> {
    const ws = new WebSocket(url);
    await new Promise<void>((resolve, reject) => {
      ws.onopen = () => resolve();
      ws.onerror = () => reject(new Error(`cannot connect to ${url}`));
    });
    return new Connection(ws);
  }

  /** Send a command and wait for its result. */
  send<T = Record<string, unknown>>(
    method: string,
    params: Record<string, unknown> = {},
    sessionId?: string,
  ): Promise<T> {
    const id = ++this.#next;
    const pending = { ...Promise.withResolvers<unknown>(), method };
    this.#pending.set(id, pending);
    this.#ws.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }));
    return pending.promise as Promise<T>;
  }

  /** Listen to events; returns a function that stops listening. */
  on(listener: (message: Message) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Close the socket. */
  close(): void {
    this.#ws.close();
  }
}

/** Options of a new page. */
export interface PageOptions {
  /** @default {true} */
  javaScriptEnabled?: boolean;
  /** @default {1280} */
  width?: number;
  /** @default {900} */
  height?: number;
  /** @default {1} */
  deviceScaleFactor?: number;
}

/** A page (tab) in its own browser context. */
export class CdpPage {
  /** Uncaught errors of the page's scripts. */
  readonly errors: string[] = [];
  /** URLs the page requested since it was opened. */
  readonly requests: string[] = [];

  constructor(readonly connection: Connection, readonly sessionId: string) {
    connection.on((message) => {
      if (message.sessionId !== sessionId) return;
      if (message.method === "Runtime.exceptionThrown") {
        const details = message.params?.exceptionDetails as {
          text: string;
          exception?: { description?: string };
        };
        this.errors.push(details.exception?.description ?? details.text);
      } else if (message.method === "Network.requestWillBeSent") {
        this.requests.push((message.params?.request as { url: string }).url);
      }
    });
  }

  /** Send a command to this page. */
  send<T = Record<string, unknown>>(
    method: string,
    params: Record<string, unknown> = {},
  ): Promise<T> {
    return this.connection.send<T>(method, params, this.sessionId);
  }

  /** Go to a URL and wait for its load event. */
  async goto(url: string, timeoutMs = 30_000): Promise<void> {
    const loaded = Promise.withResolvers<void>();
    const stop = this.connection.on((m) => {
      if (m.sessionId === this.sessionId && m.method === "Page.loadEventFired") loaded.resolve();
    });
    const timer = setTimeout(
      () => loaded.reject(new Error(`${url} did not load in ${timeoutMs} ms`)),
      timeoutMs,
    );
    try {
      const { errorText } = await this.send<{ errorText?: string }>("Page.navigate", { url });
      if (errorText) throw new Error(`cannot open ${url}: ${errorText}`);
      await loaded.promise;
    } finally {
      clearTimeout(timer);
      stop();
    }
  }

  /** Evaluate an expression in the page (awaiting a promise) and return its JSON value. */
  async evaluate<T>(expression: string): Promise<T> {
    const { result, exceptionDetails } = await this.send<{
      result: { value?: T };
      exceptionDetails?: { text: string; exception?: { description?: string } };
    }>("Runtime.evaluate", { expression, returnByValue: true, awaitPromise: true });
    if (exceptionDetails) {
      throw new Error(
        `${expression}: ${exceptionDetails.exception?.description ?? exceptionDetails.text}`,
      );
    }
    return result.value as T;
  }

  /** Evaluate an expression until it is truthy; returns its value. */
  async waitFor<T>(expression: string, timeoutMs = 10_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await this.evaluate<T>(expression);
      if (value) return value;
      if (Date.now() > deadline) {
        throw new Error(`timed out after ${timeoutMs} ms waiting for ${expression}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Whether some element's rendered text (what a person sees) contains `text`. */
  async hasVisibleText(text: string, selector = "body"): Promise<boolean> {
    return await this.evaluate<boolean>(
      `[...document.querySelectorAll(${JSON.stringify(selector)})].some((e) =>
        e.checkVisibility() && e.innerText.includes(${JSON.stringify(text)}))`,
    );
  }

  /** Move the mouse to a point of an element (relative to its top left corner). */
  async hover(selector: string, x: number, y: number): Promise<void> {
    const box = await this.evaluate<{ left: number; top: number } | null>(
      `(() => { const e = document.querySelector(${JSON.stringify(selector)});
        if (!e) return null; e.scrollIntoView(); const r = e.getBoundingClientRect();
        return { left: r.left, top: r.top }; })()`,
    );
    if (!box) throw new Error(`no element ${selector}`);
    await this.send("Input.dispatchMouseEvent", {
      type: "mouseMoved",
      x: box.left + x,
      y: box.top + y,
    });
  }

  /** A PNG of the viewport, or of the whole page. */
  async screenshot(path: string, options: { fullPage?: boolean } = {}): Promise<void> {
    const params: Record<string, unknown> = { format: "png" };
    if (options.fullPage) {
      const { cssContentSize } = await this.send<{
        cssContentSize: { width: number; height: number };
      }>("Page.getLayoutMetrics");
      params.captureBeyondViewport = true;
      params.clip = {
        x: 0,
        y: 0,
        width: Math.ceil(cssContentSize.width),
        height: Math.ceil(cssContentSize.height),
        scale: 1,
      };
    }
    const { data } = await this.send<{ data: string }>("Page.captureScreenshot", params);
    await Deno.writeFile(path, Uint8Array.from(atob(data), (c) => c.charCodeAt(0)));
  }
}

/** Open a page in a new, isolated browser context. */
export async function newPage(
  connection: Connection,
  options: PageOptions = {},
): Promise<CdpPage> {
  const { javaScriptEnabled = true, width = 1280, height = 900, deviceScaleFactor = 1 } = options;
  const { browserContextId } = await connection.send<{ browserContextId: string }>(
    "Target.createBrowserContext",
  );
  const { targetId } = await connection.send<{ targetId: string }>("Target.createTarget", {
    url: "about:blank",
    browserContextId,
  });
  const { sessionId } = await connection.send<{ sessionId: string }>("Target.attachToTarget", {
    targetId,
    flatten: true,
  });
  const page = new CdpPage(connection, sessionId);
  await page.send("Page.enable");
  await page.send("Runtime.enable");
  await page.send("Network.enable");
  await page.send("Emulation.setDeviceMetricsOverride", {
    width,
    height,
    deviceScaleFactor,
    mobile: false,
  });
  if (!javaScriptEnabled) await page.send("Emulation.setScriptExecutionDisabled", { value: true });
  return page;
}
