/**
 * The environment kubeface reads: one way to read a variable (a process
 * without `--allow-env` reads nothing), and the defaults taken from it.
 *
 * @module
 */

import { join } from "node:path";

/**
 * A variable's value, or `undefined` when it is unset, empty, or the
 * process may not read the environment.
 */
export function readEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name) || undefined;
  } catch {
    return undefined; // no --allow-env
  }
}

/**
 * The storage used when none is given: `$KUBEFACE_STORAGE`, else
 * `$XDG_DATA_HOME/kubeface` (`~/.local/share/kubeface`).
 */
export function defaultStorage(): string {
  return readEnv("KUBEFACE_STORAGE") ??
    join(readEnv("XDG_DATA_HOME") ?? join(readEnv("HOME") ?? ".", ".local", "share"), "kubeface");
}

/** The backend used when none is given: `$KUBEFACE_BACKEND`, else `"local"`. */
export function defaultBackend(): string {
  return readEnv("KUBEFACE_BACKEND") ?? "local";
}

/**
 * The per-user cache directory, or a subdirectory of it:
 * `$KUBEFACE_CACHE_DIR`, else `$XDG_CACHE_HOME/kubeface`, else `~/.cache/kubeface`.
 */
export function cacheDir(...parts: string[]): string {
  const base = readEnv("KUBEFACE_CACHE_DIR") ??
    join(readEnv("XDG_CACHE_HOME") ?? join(readEnv("HOME") ?? ".", ".cache"), "kubeface");
  return join(base, ...parts);
}
