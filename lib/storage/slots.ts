/**
 * A bound on the requests a storage client has in flight: the rest wait their turn, in order.
 *
 * @module
 */

/**
 * At most `size` calls of {@linkcode RequestSlots.run} at once; later ones wait, first come first
 * served. A burst of thousands of requests (every pod of a relisted Job ending at once) then
 * queues in memory instead of opening a connection each to a server that is slow to answer.
 */
export class RequestSlots {
  #free: number;
  #waiting: (() => void)[] = [];
  #head = 0;

  /** @param size Most calls at once, an integer of at least 1. */
  constructor(size: number) {
    this.#free = size;
  }

  /** Run `fn` once a slot is free; the slot is freed when its promise settles. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((resolve) => this.#waiting.push(resolve));
    try {
      return await fn();
    } finally {
      this.#release();
    }
  }

  #release(): void {
    const next = this.#waiting[this.#head];
    if (next === undefined) {
      this.#free++;
      return;
    }
    this.#head++;
    if (this.#head === this.#waiting.length) {
      this.#waiting = [];
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > this.#waiting.length) {
      this.#waiting = this.#waiting.slice(this.#head);
      this.#head = 0;
    }
    next();
  }
}
