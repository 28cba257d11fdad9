/**
 * CRC32C (Castagnoli), the checksum GCS keeps for every object, computed
 * incrementally 8 bytes at a time ("slicing by 8"). `@google-cloud/storage`
 * exports a `CRC32C` class too, but it works a byte at a time through
 * `Buffer` reads and measured 3.5 times slower here (13 against 45 MB/s on a
 * busy 2-core machine).
 *
 * @module
 */

const TABLES: Uint32Array[] = (() => {
  const tables = Array.from({ length: 8 }, () => new Uint32Array(256));
  const first = tables[0]!;
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    first[n] = c >>> 0;
  }
  for (let s = 1; s < 8; s++) {
    const previous = tables[s - 1]!;
    const table = tables[s]!;
    for (let n = 0; n < 256; n++) table[n] = (previous[n]! >>> 8) ^ first[previous[n]! & 0xff]!;
  }
  return tables;
})();

/** An incremental CRC32C. */
export class Crc32c {
  #crc = 0xffffffff;

  /** Add bytes. */
  update(bytes: Uint8Array): this {
    const [t0, t1, t2, t3, t4, t5, t6, t7] = TABLES as [
      Uint32Array,
      Uint32Array,
      Uint32Array,
      Uint32Array,
      Uint32Array,
      Uint32Array,
      Uint32Array,
      Uint32Array,
    ];
    let crc = this.#crc;
    let i = 0;
    const n = bytes.length;
    for (; i + 8 <= n; i += 8) {
      const a = (crc ^ (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) |
        (bytes[i + 3]! << 24))) >>> 0;
      crc = t7[a & 0xff]! ^ t6[(a >>> 8) & 0xff]! ^ t5[(a >>> 16) & 0xff]! ^ t4[a >>> 24]! ^
        t3[bytes[i + 4]!]! ^ t2[bytes[i + 5]!]! ^ t1[bytes[i + 6]!]! ^ t0[bytes[i + 7]!]!;
    }
    for (; i < n; i++) crc = t0[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8);
    this.#crc = crc >>> 0;
    return this;
  }

  /** The checksum so far as a number. */
  value(): number {
    return (this.#crc ^ 0xffffffff) >>> 0;
  }

  /** The checksum so far as GCS writes it: base64 of the 4 big-endian bytes. */
  base64(): string {
    const value = this.value();
    return btoa(
      String.fromCharCode(value >>> 24, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff),
    );
  }
}
