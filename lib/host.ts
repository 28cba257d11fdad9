/**
 * This machine's name, as workers write it in result records and local
 * backends in `started` events.
 *
 * @module
 */

let cached: string | undefined;

/** The host name (asked once), or `"localhost"` without `--allow-sys`. */
export function hostName(): string {
  if (cached === undefined) {
    try {
      cached = Deno.hostname();
    } catch {
      cached = "localhost";
    }
  }
  return cached;
}
