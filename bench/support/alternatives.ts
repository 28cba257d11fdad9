// deno-lint-ignore-file no-console
/**
 * The systems kubeface is compared with, installed on first use into a cache
 * directory outside the repository (nothing of them is committed):
 *
 * - faast.js (npm `faastjs`), run with Node, local provider;
 * - Lithops (PyPI `lithops`), in a Python venv, localhost executor.
 *
 * The driver scripts in bench/alternatives/ are copied next to each install.
 *
 * @module
 */

import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { run } from "./process.ts";

/** The pinned faast.js version (`npm view faastjs version` when pinned). */
export const FAASTJS_VERSION = "8.0.75";
/** The pinned Lithops version (`pip index versions lithops` when pinned). */
export const LITHOPS_VERSION = "3.8.0";

/**
 * The benchmark cache: `$KUBEFACE_CACHE_DIR/bench`, else
 * `${XDG_CACHE_HOME:-$HOME/.cache}/kubeface/bench`.
 */
export function benchCacheDir(): string {
  const explicit = Deno.env.get("KUBEFACE_CACHE_DIR");
  const base = explicit ??
    join(
      Deno.env.get("XDG_CACHE_HOME") ?? join(Deno.env.get("HOME") ?? "/tmp", ".cache"),
      "kubeface",
    );
  return join(base, "bench");
}

const ALTERNATIVES = new URL("../alternatives/", import.meta.url);

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

async function copyDrivers(dir: string, names: string[]): Promise<void> {
  for (const name of names) {
    await Deno.copyFile(fileURLToPath(new URL(name, ALTERNATIVES)), join(dir, name));
  }
}

/** An installed alternative, or why it is not available. */
export type Installed =
  | { ok: true; dir: string; command: string; version: string }
  | { ok: false; reason: string };

async function tool(name: string): Promise<boolean> {
  try {
    const out = await new Deno.Command(name, {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    })
      .output();
    return out.success;
  } catch {
    return false;
  }
}

let faast: Promise<Installed> | undefined;

/** Install faast.js (once per cache) and return the directory to run its driver in with `node`. */
export function ensureFaast(): Promise<Installed> {
  faast ??= installFaast();
  return faast;
}

async function installFaast(): Promise<Installed> {
  const dir = join(benchCacheDir(), `faastjs-${FAASTJS_VERSION}`);
  const marker = join(dir, "node_modules", "faastjs", "package.json");
  if (!(await tool("node")) || !(await tool("npm"))) {
    return { ok: false, reason: "faast.js needs node and npm on PATH; neither was found" };
  }
  if (!(await exists(marker))) {
    console.error(`bench: installing faastjs@${FAASTJS_VERSION} into ${dir} (about 30 s)`);
    await Deno.mkdir(dir, { recursive: true });
    await Deno.writeTextFile(
      join(dir, "package.json"),
      JSON.stringify({ name: "kubeface-bench-faastjs", private: true }, null, 2) + "\n",
    );
    try {
      await run("npm", ["install", "--no-audit", "--no-fund", `faastjs@${FAASTJS_VERSION}`], {
        cwd: dir,
        what: `install faastjs@${FAASTJS_VERSION} with npm`,
      });
    } catch (error) {
      return { ok: false, reason: String((error as Error).message) };
    }
  }
  const version = JSON.parse(await Deno.readTextFile(marker)).version as string;
  await copyDrivers(dir, ["faast_local.cjs", "faast_functions.cjs"]);
  return { ok: true, dir, command: "node", version };
}

let lithops: Promise<Installed> | undefined;

/** Install Lithops in a venv (once per cache) and return the venv's Python. */
export function ensureLithops(): Promise<Installed> {
  lithops ??= installLithops();
  return lithops;
}

async function installLithops(): Promise<Installed> {
  const dir = join(benchCacheDir(), `lithops-${LITHOPS_VERSION}`);
  const python = join(dir, "venv", "bin", "python");
  const version = async () =>
    (await run(python, ["-c", "import lithops; print(lithops.__version__)"])).trim();
  let installed: string | undefined;
  try {
    installed = await version();
  } catch { /* not installed yet */ }
  if (installed !== LITHOPS_VERSION) {
    if (!(await tool("python3"))) {
      return { ok: false, reason: "Lithops needs python3 (with venv) on PATH; it was not found" };
    }
    console.error(`bench: installing lithops==${LITHOPS_VERSION} into a venv in ${dir}`);
    await Deno.mkdir(dir, { recursive: true });
    try {
      await run("python3", ["-m", "venv", join(dir, "venv")], { what: "create a Python venv" });
      await run(python, ["-m", "pip", "install", "--quiet", `lithops==${LITHOPS_VERSION}`], {
        what: `install lithops==${LITHOPS_VERSION} with pip`,
      });
      installed = await version();
    } catch (error) {
      return { ok: false, reason: String((error as Error).message) };
    }
  }
  await copyDrivers(dir, ["lithops_local.py"]);
  return { ok: true, dir, command: python, version: installed };
}
