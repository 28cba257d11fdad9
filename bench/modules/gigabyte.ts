/**
 * The data-path task: one input of `$KUBEFACE_BENCH_BYTES` bytes (1 GiB by
 * default), returned with its first byte flipped, so input and result are
 * both that big.
 *
 * @module
 */

function size(): number {
  try {
    return Number(Deno.env.get("KUBEFACE_BENCH_BYTES") ?? 2 ** 30);
  } catch {
    return 2 ** 30;
  }
}

/** One input of the configured size; a function, so only the master builds it. */
export function inputs(): Uint8Array[] {
  return [new Uint8Array(size()).fill(7)];
}

/** Flip the first byte and return the same bytes. */
export function task(bytes: Uint8Array): Uint8Array {
  if (bytes.length > 0) bytes[0]! ^= 1;
  return bytes;
}
