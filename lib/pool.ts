/**
 * A bounded pool: at most `concurrency` async jobs, and at most `maxWeight`
 * total weight (bytes), in flight. Used to stream uploads and downloads
 * without holding more than a bounded amount in memory.
 *
 * @module
 */

/** Options of {@linkcode BoundedPool}. */
export interface PoolOptions {
  /** Most jobs at once. */
  concurrency: number;
  /**
   * Most total weight at once; one job heavier than this still runs, alone.
   *
   * @default {Infinity}
   */
  maxWeight?: number;
}

/** Runs async jobs with bounded concurrency and weight; the first failure is kept. */
export class BoundedPool {
  readonly #concurrency: number;
  readonly #maxWeight: number;
  readonly #running = new Set<Promise<void>>();
  #weight = 0;
  #error: { error: unknown } | undefined;

  /** Create a pool. */
  constructor(options: PoolOptions) {
    this.#concurrency = options.concurrency;
    this.#maxWeight = options.maxWeight ?? Infinity;
  }

  /** Wait for room, then start `job`. Throws the first failure of an earlier job. */
  async add(weight: number, job: () => Promise<void>): Promise<void> {
    while (
      this.#running.size > 0 &&
      (this.#running.size >= this.#concurrency || this.#weight + weight > this.#maxWeight)
    ) {
      await Promise.race(this.#running);
    }
    this.#throwIfFailed();
    this.#weight += weight;
    const promise: Promise<void> = job()
      .catch((error) => {
        this.#error ??= { error };
      })
      .finally(() => {
        this.#weight -= weight;
        this.#running.delete(promise);
      });
    this.#running.add(promise);
  }

  /** Wait for every job; throws the first failure. */
  async drain(): Promise<void> {
    while (this.#running.size > 0) await Promise.race(this.#running);
    this.#throwIfFailed();
  }

  #throwIfFailed(): void {
    if (this.#error) throw this.#error.error;
  }
}
