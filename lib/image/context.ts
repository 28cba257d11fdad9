/**
 * Assembling the build context of the worker image (see `Dockerfile` next to
 * this file) from what is on this machine, so the build needs no base image
 * and no registry: the running Deno binary and the shared libraries it links
 * (found with `ldd`), a non-root user, CA certificates, the project's worker
 * sources, and a DENO_DIR with their npm packages (`deno cache`).
 *
 * @module
 */

import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { BackendError } from "../errors.ts";
import type { WorkerFiles } from "../worker/launch.ts";
import { workerSourceFiles } from "../sources.ts";

/** Options of {@linkcode assembleContext}. */
export interface ContextOptions {
  /** The project root whose `worker.ts`, `lib/`, `deno.json` and `deno.lock` go into `/app`. */
  root: string;
  /**
   * The Linux Deno binary to put in the image.
   *
   * @default {Deno.execPath()}
   */
  deno?: string;
  /**
   * The CA bundle copied to `/etc/ssl/certs/ca-certificates.crt`; skipped when missing.
   *
   * @default {"/etc/ssl/certs/ca-certificates.crt"}
   */
  caCertificates?: string;
  /**
   * User id and group id of the image's user, `kubeface`.
   *
   * @default {1000}
   */
  uid?: number;
}

/** What went into a context. */
export interface ContextSummary {
  /** Files under `app/`. */
  appFiles: number;
  /** Shared libraries copied next to Deno. */
  libraries: string[];
}

/** User and group id of the worker image's user, `kubeface`. */
export const IMAGE_UID = 1000;

/** Where the worker is inside the image, with every dependency cached. */
export const IMAGE_WORKER_FILES: Required<WorkerFiles> = {
  worker: "/app/worker.ts",
  config: "/app/deno.json",
  cachedOnly: true,
};

const DOCKERFILE = new URL("./Dockerfile", import.meta.url);

/**
 * Write the build context into the empty directory `dir`: `Dockerfile`,
 * `runtime/`, `deno-dir/` and `app/`.
 *
 * @throws {BackendError} This is not Linux, `ldd` is missing, or `deno cache` failed.
 */
export async function assembleContext(
  dir: string,
  options: ContextOptions,
): Promise<ContextSummary> {
  const {
    root,
    deno = Deno.execPath(),
    caCertificates = "/etc/ssl/certs/ca-certificates.crt",
    uid = IMAGE_UID,
  } = options;
  if (Deno.build.os !== "linux") {
    throw new BackendError(
      `Cannot build the worker image on ${Deno.build.os}: it needs a Linux Deno and its libraries; run the build in a Linux container or VM (see README, "Container backend")`,
    );
  }
  await Deno.writeTextFile(join(dir, "Dockerfile"), await Deno.readTextFile(DOCKERFILE));

  const runtime = join(dir, "runtime");
  await place(deno, join(runtime, "usr/local/bin/deno"), true);
  const libraries = await sharedLibraries(deno);
  for (const lib of libraries) await place(lib, join(runtime, lib), false);
  await Deno.mkdir(join(runtime, "etc"), { recursive: true });
  await Deno.writeTextFile(
    join(runtime, "etc/passwd"),
    `root:x:0:0:root:/root:/nonexistent\nkubeface:x:${uid}:${uid}:kubeface:/tmp:/nonexistent\n`,
  );
  await Deno.writeTextFile(join(runtime, "etc/group"), `root:x:0:\nkubeface:x:${uid}:\n`);
  try {
    await place(caCertificates, join(runtime, "etc/ssl/certs/ca-certificates.crt"), false);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  await Deno.mkdir(join(runtime, "tmp"));
  await Deno.chmod(join(runtime, "tmp"), 0o1777);

  const app = join(dir, "app");
  const files = workerSourceFiles(root);
  for (const file of files) await place(join(root, file), join(app, file), false);

  const denoDir = join(dir, "deno-dir");
  await cacheDependencies(deno, app, denoDir);
  return { appFiles: files.length, libraries };
}

/** Copy (or hard-link, for big files) `from` to `to`, creating parent directories. */
async function place(from: string, to: string, link: boolean): Promise<void> {
  await Deno.mkdir(dirname(to), { recursive: true });
  if (link) {
    try {
      await Deno.link(from, to);
      return;
    } catch { /* another file system: copy */ }
  }
  await Deno.copyFile(from, to);
}

/** Absolute paths of the shared libraries a binary links, from `ldd`. */
async function sharedLibraries(binary: string): Promise<string[]> {
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command("ldd", { args: [binary], stdout: "piped", stderr: "piped" })
      .output();
  } catch (error) {
    throw new BackendError(
      `Cannot build the worker image: 'ldd' could not run (${error}); install libc-bin`,
    );
  }
  const text = new TextDecoder().decode(output.stdout);
  if (!output.success) {
    throw new BackendError(
      `Cannot build the worker image: 'ldd ${binary}' failed: ${
        new TextDecoder().decode(output.stderr).trim()
      }`,
    );
  }
  const libs = [...text.matchAll(/(?:=>\s*)?(\/\S+)\s+\(0x[0-9a-f]+\)/g)].map((m) => m[1]!);
  return [...new Set(libs)];
}

/**
 * Fill `denoDir` with the npm packages of the worker and its task thread,
 * at the versions `deno.lock` pins, and nothing else. Deno installs every
 * package of the lock once one is needed, so the image's `deno.json` keeps
 * only the import map entries the worker's files use, and `deno cache`
 * prunes its `deno.lock` to them. Only the downloads (`npm/`, `remote/`)
 * are kept; the rest is keyed by paths that differ in the image.
 */
async function cacheDependencies(deno: string, app: string, denoDir: string): Promise<void> {
  const entries = [join(app, "worker.ts")];
  for await (const entry of Deno.readDir(join(app, "lib/worker"))) {
    if (entry.isFile && entry.name.endsWith(".ts")) {
      entries.push(join(app, "lib/worker", entry.name));
    }
  }
  const configPath = join(app, "deno.json");
  const config = JSON.parse(await Deno.readTextFile(configPath));
  const used = await bareSpecifiers(entries);
  const imports: Record<string, string> = {};
  for (const [key, value] of Object.entries<string>(config.imports ?? {})) {
    if ([...used].some((s) => s === key || s.startsWith(key.endsWith("/") ? key : `${key}/`))) {
      imports[key] = value;
    }
  }
  await Deno.writeTextFile(configPath, JSON.stringify({ ...config, imports }, null, 2) + "\n");
  const output = await new Deno.Command(deno, {
    args: ["cache", "--quiet", `--config=${configPath}`, ...entries.sort()],
    env: { DENO_DIR: denoDir, NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!output.success) {
    throw new BackendError(
      `Cannot build the worker image: 'deno cache' of the worker failed: ${
        new TextDecoder().decode(output.stderr).trim()
      }`,
    );
  }
  for await (const entry of Deno.readDir(denoDir)) {
    if (entry.name !== "npm" && entry.name !== "remote") {
      await Deno.remove(join(denoDir, entry.name), { recursive: true });
    }
  }
  await makeReadable(denoDir);
}

/**
 * Let any user read what is under `dir`: some npm packages ship files of
 * mode 0600, which a worker running as another user than the image's owner
 * (a pod's `runAsUser`, without capabilities) could not load.
 */
async function makeReadable(dir: string): Promise<void> {
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isSymlink) continue;
    const mode = ((await Deno.stat(path)).mode ?? 0) & 0o7777;
    const wanted = mode | (entry.isDirectory ? 0o555 : 0o444);
    if (wanted !== mode) await Deno.chmod(path, wanted);
    if (entry.isDirectory) await makeReadable(path);
  }
}

/**
 * Bare import specifiers (`"@google-cloud/storage"`, not `"./x.ts"` or
 * `"node:fs"`) of the given files and of every local file they import.
 */
async function bareSpecifiers(files: string[]): Promise<Set<string>> {
  const bare = new Set<string>();
  const seen = new Set<string>();
  const queue = [...files];
  const pattern = /(?:\bfrom|\bimport)\s*\(?\s*["']([^"']+)["']/g;
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    let text: string;
    try {
      text = await Deno.readTextFile(file);
    } catch {
      continue; // a generated or optional file
    }
    for (const [, specifier] of text.matchAll(pattern)) {
      if (specifier!.startsWith(".")) queue.push(join(dirname(file), specifier!));
      else if (!/^[a-z][a-z0-9+.-]*:/.test(specifier!)) bare.add(specifier!);
    }
  }
  return bare;
}

/** Path of the Dockerfile, for tools that want to read it. */
export function dockerfilePath(): string {
  return fileURLToPath(DOCKERFILE);
}
