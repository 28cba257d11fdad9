/**
 * Getting the worker into a pod of the stock Deno image, which has Deno and
 * nothing else: kubeface's worker is bundled (with the storage client) into
 * `worker.js` and its task thread into `task_thread.js`, both stored once
 * under `runtime/<sha256>.js` in the job's storage. The pod runs a short
 * bootstrap with `deno eval` that downloads them (from GCS with a token from
 * the metadata server, from `STORAGE_EMULATOR_HOST`, or from a local path),
 * checks their sha256, and starts the worker. Nothing else is installed.
 *
 * @module
 */

import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { sha256Hex } from "../../bundle.ts";
import { cacheDir } from "../../cache_dir.ts";
import type { Storage } from "../../storage/storage.ts";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));

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

/** Hash of every source file the bundles are made of, to cache them by. */
async function sourceHash(): Promise<string> {
  const files: string[] = [
    join(ROOT, "worker.ts"),
    join(ROOT, "deno.json"),
    join(ROOT, "deno.lock"),
  ];
  const walk = async (dir: string) => {
    for await (const entry of Deno.readDir(dir)) {
      const path = join(dir, entry.name);
      if (entry.isDirectory) await walk(path);
      else if (entry.name.endsWith(".ts")) files.push(path);
    }
  };
  await walk(join(ROOT, "lib"));
  files.sort();
  const parts: Uint8Array[] = [];
  for (const file of files) {
    parts.push(new TextEncoder().encode(`${file.slice(ROOT.length)}\n`));
    parts.push(await Deno.readFile(file).catch(() => new Uint8Array()));
  }
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    all.set(part, offset);
    offset += part.length;
  }
  return (await sha256Hex(all)).slice(0, 24);
}

async function bundle(entry: string, out: string): Promise<void> {
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["bundle", "--quiet", "--platform", "deno", "-o", out, join(ROOT, entry)],
    cwd: ROOT,
    stdout: "null",
    stderr: "piped",
  }).output();
  if (code !== 0) {
    throw new Error(
      `Cannot bundle kubeface's ${entry} for the pods: ${new TextDecoder().decode(stderr).trim()}`,
    );
  }
}

/**
 * Build the runtime bundles (cached by a hash of kubeface's sources) and
 * store them in `storage` if they are not there yet.
 */
export async function storeRuntime(storage: Storage): Promise<Runtime> {
  const dir = cacheDir("runtime", await sourceHash());
  const files = { worker: join(dir, "worker.js"), thread: join(dir, "task_thread.js") };
  try {
    await Deno.stat(files.thread);
  } catch {
    const temp = `${dir}.tmp-${crypto.randomUUID().slice(0, 8)}`;
    await Deno.mkdir(temp, { recursive: true });
    await bundle("worker.ts", join(temp, "worker.js"));
    await bundle("lib/worker/task_thread.ts", join(temp, "task_thread.js"));
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

/**
 * The bootstrap a stock-image pod runs with `deno eval`. It reads
 * `KUBEFACE_STORAGE`, `KUBEFACE_RUNTIME` (`<worker key>@<sha256>,<thread key>@<sha256>`)
 * and `KUBEFACE_SCRATCH` from the environment.
 */
export const BOOTSTRAP = `
const env = Deno.env.toObject();
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
// PID 1 of a container ignores SIGTERM unless it handles it: without this, a deleted pod would
// run on until the grace period ends and SIGKILL comes.
Deno.addSignalListener("SIGTERM", () => Deno.exit(143));
for (const [name, spec] of [["worker.js", 0], ["task_thread.js", 1]]) {
  const [key, sha256] = env.KUBEFACE_RUNTIME.split(",")[spec].split("@");
  const bytes = await fetchObject(key);
  const hex = Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)), (b) => b.toString(16).padStart(2, "0")).join("");
  if (hex !== sha256) { console.error("kubeface bootstrap: " + key + " has sha256 " + hex + ", not " + sha256); Deno.exit(75); }
  await Deno.writeFile(dir + "/" + name, bytes);
}
const { main } = await import("file://" + dir + "/worker.js");
const code = await main([]);
await Deno.remove(dir, { recursive: true }).catch(() => {});
Deno.exit(code);
`.trim();
