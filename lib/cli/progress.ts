/**
 * The progress line drawn on a terminal while a job runs.
 *
 * @module
 */

import type { Progress } from "../master/state.ts";
import type { Io } from "./io.ts";

/** Milliseconds as `1h02m`, `3m05s` or `4.2s`. */
export function formatDuration(ms: number): string {
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(Math.floor(s % 60)).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}

/** One line of counts. */
export function progressLine(p: Progress): string {
  if (p.phase === "preparing") {
    return `${p.job}: preparing, ${p.uploaded ?? 0} input(s) uploaded | ${
      formatDuration(p.elapsedMs)
    } elapsed`;
  }
  const parts = [`${p.done}/${p.total} done`, `${p.running} running`];
  if (p.failed) parts.push(`${p.failed} failed`);
  if (p.reused) parts.push(`${p.reused} reused`);
  if (p.retried) parts.push(`${p.retried} retried`);
  if (p.speculative) parts.push(`${p.speculative} speculative`);
  const eta = p.etaMs !== undefined && p.etaMs > 0 ? `, ETA ${formatDuration(p.etaMs)}` : "";
  return `${p.job}: ${parts.join(", ")} | ${formatDuration(p.elapsedMs)} elapsed${eta}`;
}

/** Draws progress on a terminal at most every `intervalMs`; silent elsewhere. */
export class ProgressLine {
  readonly #io: Io;
  readonly #enabled: boolean;
  #last = 0;
  #drawn = false;
  #latest: Progress | undefined;

  /** Draw on `io` when it is a terminal and `quiet` is off. */
  constructor(io: Io, quiet: boolean, readonly intervalMs = 100) {
    this.#io = io;
    this.#enabled = io.isTerminal && !quiet;
  }

  /** Take new counts. */
  readonly update = (progress: Progress): void => {
    this.#latest = progress;
    const now = Date.now();
    if (!this.#enabled || now - this.#last < this.intervalMs) return;
    this.#last = now;
    this.#io.err(`\r\x1b[2K${progressLine(progress)}`);
    this.#drawn = true;
  };

  /** Draw the final counts and end the line. */
  end(): void {
    if (!this.#enabled || !this.#drawn) return;
    if (this.#latest) this.#io.err(`\r\x1b[2K${progressLine(this.#latest)}`);
    this.#io.err("\n");
    this.#drawn = false;
  }
}
