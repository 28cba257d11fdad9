/**
 * Small statistics for benchmark figures: median, quantiles, and number
 * formatting for tables.
 *
 * @module
 */

/**
 * The median of some numbers (the mean of the two middle ones for an even count).
 *
 * @throws {RangeError} There are no numbers.
 */
export function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}

/**
 * The `q`-quantile (0 to 1) of some numbers, interpolating linearly between
 * the closest ranks.
 *
 * @throws {RangeError} There are no numbers, or `q` is outside 0 to 1.
 */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) throw new RangeError("Cannot take a quantile of no values");
  if (!(q >= 0 && q <= 1)) throw new RangeError(`Cannot take quantile ${q}: give 0 to 1`);
  const sorted = [...values].sort((a, b) => a - b);
  const at = q * (sorted.length - 1);
  const low = Math.floor(at);
  const high = Math.ceil(at);
  return sorted[low]! + (sorted[high]! - sorted[low]!) * (at - low);
}

/** The median of one field over several runs. */
export function medianOf<T>(runs: readonly T[], field: (run: T) => number): number {
  return median(runs.map(field));
}

/** A number with `digits` decimals, or "–" when it is not finite. */
export function fixed(value: number | undefined, digits = 1): string {
  return value === undefined || !Number.isFinite(value) ? "–" : value.toFixed(digits);
}

/** Bytes as MiB with one decimal. */
export function mib(bytes: number | undefined): string {
  return bytes === undefined ? "–" : (bytes / 2 ** 20).toFixed(1);
}

/** A ratio like `3.2×`, or "–". */
export function ratio(value: number | undefined, reference: number | undefined): string {
  if (value === undefined || reference === undefined || !(reference > 0)) return "–";
  const r = value / reference;
  return `${r >= 10 ? r.toFixed(0) : r >= 1 ? r.toFixed(1) : r.toFixed(2)}×`;
}
