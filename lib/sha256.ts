/**
 * SHA-256 of bytes in memory, with the Web Crypto API Deno ships (no
 * node:crypto: workers load this at start).
 *
 * @module
 */

/** Hex sha256 of bytes. */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as BufferSource));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}
