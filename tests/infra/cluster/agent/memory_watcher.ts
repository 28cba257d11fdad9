/**
 * Enforce container memory limits: sample the RSS of each watched process session every
 * `intervalMs` and call back once it passes the limit (the agent then kills it and reports
 * `OOMKilled`, as the kernel's cgroup OOM killer would).
 *
 * @module
 */

import { rssBySession } from "./rss.ts";

interface Watched {
  limit: number;
  onExceed: (rss: number) => void;
}

/** Samples memory of watched sessions while at least one is watched. */
export class MemoryWatcher {
  #watched = new Map<number, Watched>();
  #timer: ReturnType<typeof setInterval> | undefined;
  readonly #intervalMs: number;

  /**
   * @param intervalMs Sampling period. @default 200
   */
  constructor(intervalMs = 200) {
    this.#intervalMs = intervalMs;
  }

  /**
   * Watch the session led by `pid`.
   *
   * @param pid The session id (the container's pid).
   * @param limit Bytes.
   * @param onExceed Called once, with the RSS that passed the limit.
   * @returns A function that stops watching.
   */
  watch(pid: number, limit: number, onExceed: (rss: number) => void): () => void {
    this.#watched.set(pid, { limit, onExceed });
    this.#timer ??= setInterval(() => this.#sample(), this.#intervalMs);
    return () => this.#unwatch(pid);
  }

  #unwatch(pid: number): void {
    this.#watched.delete(pid);
    if (this.#watched.size === 0 && this.#timer !== undefined) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  #sample(): void {
    const totals = rssBySession();
    for (const [pid, { limit, onExceed }] of this.#watched) {
      const rss = totals.get(pid) ?? 0;
      if (rss > limit) {
        this.#unwatch(pid);
        onExceed(rss);
      }
    }
  }

  /** Stop sampling and forget every watched session. */
  stop(): void {
    for (const pid of [...this.#watched.keys()]) this.#unwatch(pid);
  }
}
