/**
 * Getting the worker into a pod of the stock Deno image, which has Deno and
 * nothing else: kubeface's worker is bundled (with the storage client) into
 * `worker.js` and its task thread into `task_thread.js`, both stored once
 * under `runtime/<sha256>.js` in the job's storage. The pod runs a short
 * bootstrap with `deno eval` that downloads them (from GCS with a token from
 * the metadata server, from `STORAGE_EMULATOR_HOST`, or from a local path),
 * checks their sha256, and starts the worker. Nothing else is installed.
 * The bootstrap runs as a `data:` module under `deno run` with the worker
 * process's permissions, not with every permission as `deno eval` would.
 * A pod stopped (SIGTERM) before the worker runs exits at once with 143:
 * as its container's first process it would otherwise ignore the signal.
 *
 * @module
 */

import { join } from "node:path";
import { denoBundle } from "../../bundle.ts";
import { sha256Hex } from "../../sha256.ts";
import { cacheDir } from "../../env.ts";
import { BackendError, errorMessage } from "../../errors.ts";
import { projectRoot, sourcesHash } from "../../sources.ts";
import type { Storage } from "../../storage/storage.ts";

/** One stored runtime file. */
export interface RuntimeFile {
  /** Storage key, `runtime/<sha256>.js`. */
  key: string;
  sha256: string;
}

/** The stored runtime of a job's pods. */
export interface Runtime {
  worker: RuntimeFile;
  thread: RuntimeFile;
}

async function bundleRuntime(root: string, entry: string, out: string): Promise<void> {
  try {
    await denoBundle(join(root, entry), out, { cwd: root });
  } catch (error) {
    throw new BackendError(
      `Cannot bundle kubeface's ${entry} for the pods: ${errorMessage(error)}`,
    );
  }
}

/**
 * Build the runtime bundles (cached by a hash of kubeface's sources) and
 * store them in `storage` if they are not there yet.
 */
export async function storeRuntime(storage: Storage): Promise<Runtime> {
  const root = projectRoot();
  if (root === undefined) {
    throw new BackendError(
      "Cannot bundle kubeface's worker for the pods: kubeface does not run from local files; use a worker image (--worker-image)",
    );
  }
  const dir = cacheDir("runtime", sourcesHash(root).slice(0, 24));
  const files = { worker: join(dir, "worker.js"), thread: join(dir, "task_thread.js") };
  try {
    await Deno.stat(files.thread);
  } catch {
    const temp = `${dir}.tmp-${crypto.randomUUID().slice(0, 8)}`;
    await Deno.mkdir(temp, { recursive: true });
    await bundleRuntime(root, "worker.ts", join(temp, "worker.js"));
    await bundleRuntime(root, "lib/worker/task_thread.ts", join(temp, "task_thread.js"));
    await Deno.rename(temp, dir).catch(async () => {
      await Deno.remove(temp, { recursive: true }); // another master built it meanwhile
    });
  }
  const store = async (path: string): Promise<RuntimeFile> => {
    const bytes = await Deno.readFile(path);
    const sha256 = await sha256Hex(bytes);
    const key = `runtime/${sha256}.js`;
    if (!(await storage.stat(key))) {
      await storage.put(key, bytes, { ifAbsent: true, contentType: "text/javascript" });
    }
    return { key, sha256 };
  };
  return { worker: await store(files.worker), thread: await store(files.thread) };
}

/** The bootstrap as a module URL, for `deno run`. */
export function bootstrapUrl(): string {
  const bytes = new TextEncoder().encode(BOOTSTRAP);
  return `data:text/javascript;base64,${
    btoa(Array.from(bytes, (b) => String.fromCharCode(b)).join(""))
  }`;
}

/**
 * The bootstrap a stock-image pod runs. It reads
 * `KUBEFACE_STORAGE`, `KUBEFACE_RUNTIME` (`<worker key>@<sha256>,<thread key>@<sha256>`)
 * and `KUBEFACE_SCRATCH` from the environment.
 */
export const BOOTSTRAP = `
const stopped = () => Deno.exit(143);
Deno.addSignalListener("SIGTERM", stopped);
const env = {};
for (const name of ["KUBEFACE_STORAGE", "KUBEFACE_SCRATCH", "KUBEFACE_RUNTIME", "STORAGE_EMULATOR_HOST"]) {
  try { env[name] = Deno.env.get(name); } catch { /* not granted */ }
}
const root = env.KUBEFACE_STORAGE.replace(/\\/?$/, "/");
await Deno.mkdir(env.KUBEFACE_SCRATCH, { recursive: true });
const dir = await Deno.makeTempDir({ dir: env.KUBEFACE_SCRATCH, prefix: "runtime-" });
async function token() {
  const r = await fetch("http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/token", { headers: { "Metadata-Flavor": "Google" } });
  if (!r.ok) throw new Error("metadata server: " + r.status + " " + await r.text());
  return (await r.json()).access_token;
}
async function fetchObject(key) {
  if (root.startsWith("file://")) return await Deno.readFile(new URL(key, root));
  const [, bucket, prefix] = /^gs:\\/\\/([^/]+)\\/(.*)$/.exec(root);
  let base = env.STORAGE_EMULATOR_HOST;
  const headers = {};
  if (base) base = (/^https?:/.test(base) ? base : "http://" + base).replace(/\\/storage\\/v1\\/?$|\\/$/, "");
  else { base = "https://storage.googleapis.com"; headers.authorization = "Bearer " + await token(); }
  const url = base + "/storage/v1/b/" + bucket + "/o/" + encodeURIComponent(prefix + key) + "?alt=media";
  for (let attempt = 0; ; attempt++) {
    try {
      const r = await fetch(url, { headers });
      if (r.ok) return new Uint8Array(await r.arrayBuffer());
      const text = await r.text();
      if (r.status !== 429 && r.status < 500) throw Object.assign(new Error("GET " + url + ": " + r.status + " " + text), { final: true });
      if (attempt >= 6) throw new Error("GET " + url + ": " + r.status + " " + text);
    } catch (error) {
      if (error.final || attempt >= 6) throw error;
    }
    await new Promise((resolve) => setTimeout(resolve, 250 * 2 ** attempt * (0.5 + Math.random())));
  }
}
for (const [name, spec] of [["worker.js", 0], ["task_thread.js", 1]]) {
  const [key, sha256] = env.KUBEFACE_RUNTIME.split(",")[spec].split("@");
  const bytes = await fetchObject(key);
  const hex = Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)), (b) => b.toString(16).padStart(2, "0")).join("");
  if (hex !== sha256) { console.error("kubeface bootstrap: " + key + " has sha256 " + hex + ", not " + sha256); Deno.exit(75); }
  await Deno.writeFile(dir + "/" + name, bytes);
}
const { main } = await import("file://" + dir + "/worker.js");
Deno.removeSignalListener("SIGTERM", stopped);
const code = await main([]);
await Deno.remove(dir, { recursive: true }).catch(() => {});
Deno.exit(code);
`.trim();
