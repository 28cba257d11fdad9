/**
 * Kubernetes resource quantities ("500m", "64Mi", "1.5Gi", "2e3") as numbers.
 *
 * @module
 */

const SUFFIXES: Record<string, number> = {
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  "": 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

/**
 * Parse a quantity.
 *
 * @param quantity A quantity string, e.g. `"64Mi"` or `"250m"`.
 * @returns Its value in base units (bytes, cores).
 * @throws {RangeError} When the text is not a quantity.
 */
export function parseQuantity(quantity: string): number {
  const match = quantity.trim().match(/^([+-]?(?:\d+\.?\d*|\.\d+))([eE][+-]?\d+|[a-zA-Z]*)$/);
  const number = match?.[1];
  const suffix = match?.[2] ?? "";
  if (number === undefined) throw new RangeError(`Cannot parse the quantity "${quantity}"`);
  if (/^[eE]/.test(suffix)) return Number(number) * 10 ** Number(suffix.slice(1));
  const multiplier = SUFFIXES[suffix];
  if (multiplier === undefined) {
    throw new RangeError(`Cannot parse the quantity "${quantity}": unknown suffix "${suffix}"`);
  }
  return Number(number) * multiplier;
}
