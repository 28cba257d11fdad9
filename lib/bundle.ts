/**
 * Bundling a task module with `deno bundle` into one self-contained ES
 * module (npm packages inlined), with an inline source map whose sources are
 * absolute, so a remote stack trace names the user's own files and lines.
 *
 * @module
 */

import { dirname, join } from "node:path";
import { fileURLToPath as fromFileUrl, pathToFileURL as toFileUrl } from "node:url";

/** A bundled task module. */
export interface Bundle {
  /** The JavaScript module, source map included. */
  code: Uint8Array;
  /** Hex sha256 of `code`. */
  sha256: string;
}

/** Hex sha256 of bytes. */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as BufferSource));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
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
  const { cwd, sourcemap = false, deno = Deno.execPath(), signal } = options;
  const { code, stderr } = await new Deno.Command(deno, {
    args: [
      "bundle",
      "--quiet",
      "--platform",
      "deno",
      ...(sourcemap ? ["--sourcemap", "external"] : []),
      "-o",
      out,
      entry,
    ],
    cwd,
    stdout: "null",
    stderr: "piped",
    signal,
  }).output();
  if (code !== 0) throw new Error(new TextDecoder().decode(stderr).trim());
}

/**
 * Bundle the module at `url` (a `file:` URL). Runs in the module's directory
 * so its own `deno.json` and lock file apply.
 *
 * @throws {Error} `deno bundle` failed; the message holds its output.
 */
export async function bundleModule(
  url: URL,
  options: Pick<DenoBundleOptions, "deno" | "signal"> = {},
): Promise<Bundle> {
  if (url.protocol !== "file:") {
    throw new TypeError(
      `Cannot bundle '${url.href}': only local task modules (paths or file: URLs) can be bundled`,
    );
  }
  const path = fromFileUrl(url);
  const dir = await Deno.makeTempDir({ prefix: "kubeface-bundle-" });
  try {
    const out = join(dir, "bundle.js");
    await denoBundle(path, out, { cwd: dirname(path), sourcemap: true, ...options }).catch(
      (error) => {
        throw new Error(
          `Cannot bundle task module '${url.href}' with deno bundle:\n${error.message}`,
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
    return { code: bytes, sha256: await sha256Hex(bytes) };
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}
