/**
 * The generations a storage last saw of its objects, so that writes and
 * deletes can carry an `ifGenerationMatch` precondition without asking first.
 * A generation here is a hint: a precondition built from a stale one fails
 * with 412, and the caller then looks the object up.
 *
 * @module
 */

/** A bounded map from object name to generation; the oldest entries go first. */
export class Generations {
  readonly #limit: number;
  readonly #map = new Map<string, string>();

  /** Keep at most `limit` names. */
  constructor(limit = 10_000) {
    this.#limit = limit;
  }

  /** The generation last seen of `name`, if any. */
  get(name: string): string | undefined {
    return this.#map.get(name);
  }

  /** Remember a generation (`undefined` forgets the name). */
  set(name: string, generation: string | number | undefined): void {
    this.#map.delete(name);
    if (generation === undefined || generation === null) return;
    this.#map.set(name, String(generation));
    if (this.#map.size > this.#limit) this.#map.delete(this.#map.keys().next().value!);
  }
}
