// deno-lint-ignore-file no-console
/**
 * Times starting a permission-limited Worker thread (as lib/worker does for
 * every attempt) until its module graph is loaded, for an empty module and
 * for one that loads the task thread of this checkout. Prints one JSON line:
 * `{"empty": [ms…], "taskThread": [ms…]}`.
 *
 * ```sh
 * deno run -A --unstable-worker-options --config=deno.json bench/drivers/thread_start.ts 10
 * ```
 *
 * @module
 */

import { join } from "node:path";
import { pathToFileURL } from "node:url";

async function time(url: string, runs: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    const worker = new Worker(url, {
      type: "module",
      deno: { permissions: "none" },
    } as WorkerOptions);
    await new Promise<void>((resolve, reject) => {
      worker.onmessage = () => resolve();
      worker.onerror = (event) => {
        event.preventDefault();
        reject(new Error(event.message));
      };
    });
    out.push(performance.now() - started);
    worker.terminate();
  }
  return out;
}

if (import.meta.main) {
  const runs = Number(Deno.args[0] ?? 10);
  const root = new URL("../../", import.meta.url).pathname;
  const dir = await Deno.makeTempDir({ prefix: "kubeface-bench-thread-" });
  try {
    const empty = join(dir, "empty.js");
    await Deno.writeTextFile(empty, 'self.postMessage("ready");\n');
    const thread = join(dir, "task_thread.js");
    const taskThread = pathToFileURL(join(root, "lib", "worker", "task_thread.ts")).href;
    await Deno.writeTextFile(thread, `import "${taskThread}";\nself.postMessage("ready");\n`);
    console.log(JSON.stringify({
      empty: await time(pathToFileURL(empty).href, runs),
      taskThread: await time(pathToFileURL(thread).href, runs),
    }));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
