/**
 * Bundling a task module with `deno bundle` into one self-contained ES
 * module (npm packages inlined), with an inline source map whose sources are
 * absolute, so a remote stack trace names the user's own files and lines.
 *
 * The module is bundled with the configuration of the project it belongs
 * to, as `deno run` of it from its own directory would use: the nearest
 * `deno.json`, `deno.jsonc` or `package.json` above it, with its import map
 * and lock file, whatever the working directory of kubeface is.
 *
 * @module
 */

import { sha256Hex } from "./sha256.ts";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath as fromFileUrl, pathToFileURL as toFileUrl } from "node:url";
import { type Logger, SILENT } from "./log.ts";

/** A bundled task module. */
export interface Bundle {
  /** The JavaScript module, source map included. */
  code: Uint8Array;
  /** Hex sha256 of `code`. */
  sha256: string;
}

/** Options of {@linkcode denoBundle}. */
export interface DenoBundleOptions {
  /** Working directory: its `deno.json` and lock file apply. */
  cwd: string;
  /** Write an external source map next to the output. @default {false} */
  sourcemap?: boolean;
  /** The Deno executable. @default {Deno.execPath()} */
  deno?: string;
  /** Stops the bundler. */
  signal?: AbortSignal;
  /** A configuration file to use instead of the one found from `cwd`. */
  config?: string;
}

/** Names of the files Deno takes a project's configuration from, nearest first in each directory. */
const CONFIG_NAMES = ["deno.json", "deno.jsonc", "package.json"];

/**
 * The configuration file `deno run` finds for a module in `dir`: the
 * nearest `deno.json`, `deno.jsonc` or `package.json` in `dir` or above it,
 * or `undefined` when there is none.
 */
export function findProjectConfig(dir: string): string | undefined {
  for (let at = resolve(dir);; at = dirname(at)) {
    for (const name of CONFIG_NAMES) {
      try {
        if (Deno.statSync(join(at, name)).isFile) return join(at, name);
      } catch { /* not here */ }
    }
    if (dirname(at) === at) return undefined;
  }
}

/** Deno's error text without colours or Rust's backtrace, for an error message. */
function plainDenoError(text: string): string {
  // deno-lint-ignore no-control-regex
  return text.replace(/\x1b\[[0-9;]*m/g, "").replace(/\n*Stack backtrace:[\s\S]*$/, "").trim();
}

/**
 * Bundle `entry` into the one file `out` with `deno bundle`.
 *
 * @throws {Error} `deno bundle` failed; the message is its output.
 */
export async function denoBundle(
  entry: string,
  out: string,
  options: DenoBundleOptions,
): Promise<void> {
  const { cwd, sourcemap = false, deno = Deno.execPath(), config, signal } = options;
  const { code, stderr } = await new Deno.Command(deno, {
    args: [
      "bundle",
      "--quiet",
      "--platform",
      "deno",
      ...(config ? ["--config", resolve(config)] : []),
      ...(sourcemap ? ["--sourcemap", "external"] : []),
      "-o",
      out,
      entry,
    ],
    cwd,
    // Its text becomes an error message: no colours, and no Rust backtrace.
    env: { NO_COLOR: "1", RUST_BACKTRACE: "0" },
    stdout: "null",
    stderr: "piped",
    signal,
  }).output();
  if (code !== 0) throw new Error(plainDenoError(new TextDecoder().decode(stderr)));
}

/** Options of {@linkcode bundleModule}. */
export interface BundleModuleOptions {
  /**
   * The project configuration to bundle with (`deno.json`, as `deno run
   * --config` takes it).
   *
   * @default {the nearest deno.json, deno.jsonc or package.json above the module}
   */
  config?: string;
  /** The Deno executable. @default {Deno.execPath()} */
  deno?: string;
  /** Gets a line per step. @default {nothing is logged} */
  logger?: Logger;
  /** Stops the bundler. */
  signal?: AbortSignal;
}

/**
 * Bundle the module at `url` (a `file:` URL). Runs in the module's directory
 * so its own project's `deno.json` (or `package.json`) and lock file apply,
 * unless `options.config` names another.
 *
 * @throws {BundleError} `deno bundle` failed; the message holds its output
 * and the configuration it used.
 */
export async function bundleModule(url: URL, options: BundleModuleOptions = {}): Promise<Bundle> {
  const { config, deno = Deno.execPath(), logger = SILENT, signal } = options;
  if (url.protocol !== "file:") {
    throw new TypeError(
      `Cannot bundle '${url.href}': only local task modules (paths or file: URLs) can be bundled`,
    );
  }
  const path = fromFileUrl(url);
  const found = config === undefined ? findProjectConfig(dirname(path)) : undefined;
  const using = config !== undefined
    ? `the configuration ${resolve(config)}`
    : found
    ? `the configuration ${found}, the nearest above the module`
    : "no configuration file (there is no deno.json or package.json above the module)";
  logger("master", `bundling ${url.href} with ${using}`);
  const started = performance.now();
  const dir = await Deno.makeTempDir({ prefix: "kubeface-bundle-" });
  try {
    const out = join(dir, "bundle.js");
    await denoBundle(path, out, { cwd: dirname(path), sourcemap: true, deno, config, signal })
      .catch(
        (error) => {
          throw new BundleError(
            `Cannot bundle task module '${url.href}' with deno bundle (using ${using}; pass --config or the config option to use another)`,
            error.message,
          );
        },
      );
    const js = await Deno.readTextFile(out);
    const map = JSON.parse(await Deno.readTextFile(out + ".map")) as { sources?: string[] };
    map.sources = (map.sources ?? []).map((source) =>
      /^[a-z][a-z0-9+.-]*:/i.test(source) ? source : new URL(source, toFileUrl(out)).href
    );
    const inline = btoa(
      Array.from(new TextEncoder().encode(JSON.stringify(map)), (b) => String.fromCharCode(b))
        .join(""),
    );
    const body = js.replace(/\n\/\/# sourceMappingURL=.*\s*$/, "\n") +
      `//# sourceMappingURL=data:application/json;base64,${inline}\n`;
    const bytes = new TextEncoder().encode(body);
    const bundle = { code: bytes, sha256: await sha256Hex(bytes) };
    logger(
      "master",
      `bundled ${url.href}: ${bytes.length} bytes, sha256 ${bundle.sha256.slice(0, 12)}… (${
        Math.round(performance.now() - started)
      } ms)`,
    );
    return bundle;
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** `deno bundle` refused a module; `output` is what it said, without colours. */
export class BundleError extends Error {
  /** What failed, in one line. */
  readonly summary: string;
  /** What `deno bundle` printed. */
  readonly output: string;

  /** Build a bundle error. */
  constructor(summary: string, output: string) {
    super(`${summary}:\n${output}`);
    this.name = "BundleError";
    this.summary = summary;
    this.output = output;
  }
}
