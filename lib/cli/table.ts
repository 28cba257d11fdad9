/**
 * Plain-text layout of listings: aligned columns and relative times.
 *
 * @module
 */

import { formatDuration } from "./progress.ts";

/** How long ago an ISO 8601 time was, e.g. `3m 2s ago`. */
export function ago(iso: string, now = Date.now()): string {
  return `${formatDuration(Math.max(0, now - Date.parse(iso)))} ago`;
}

/** Rows as left-aligned columns, two spaces apart; the first row is the header. */
export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join("  ").trimEnd()).join(
    "\n",
  ) +
    "\n";
}
