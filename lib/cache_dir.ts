/**
 * The per-user cache directory: `$KUBEFACE_CACHE_DIR`, else
 * `$XDG_CACHE_HOME/kubeface`, else `~/.cache/kubeface`.
 *
 * @module
 */

import { join } from "node:path";

/** The cache directory, or a subdirectory of it. */
export function cacheDir(...parts: string[]): string {
  const env = (name: string) => {
    try {
      return Deno.env.get(name) || undefined;
    } catch {
      return undefined;
    }
  };
  const base = env("KUBEFACE_CACHE_DIR") ??
    join(env("XDG_CACHE_HOME") ?? join(env("HOME") ?? ".", ".cache"), "kubeface");
  return join(base, ...parts);
}
