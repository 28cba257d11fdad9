/**
 * Writing results as JSON lines or CSV. Values JSON cannot hold are turned
 * into the nearest plain form: BigInt → decimal string, Map → object (or
 * array of pairs), Set → array, typed arrays → arrays of numbers, Error →
 * `{name, message}`, `undefined` → `null`, a stored file → `{file: URL, size}`.
 *
 * @module
 */

import { errorMessage } from "../errors.ts";
import { StoredFile } from "../file_store.ts";

/** Output formats. */
export const FORMATS = ["jsonl", "csv"] as const;

/** An output format. */
export type Format = typeof FORMATS[number];

/**
 * A value in a form `JSON.stringify` keeps.
 *
 * @throws {TypeError} The value refers to itself (JSON cannot hold a cycle);
 * the message gives the path, e.g. `$.a.self`.
 */
export function toJsonValue(value: unknown): unknown {
  return plain(value, "$", new Set());
}

function plain(value: unknown, path: string, ancestors: Set<object>): unknown {
  if (value === undefined) return null;
  if (typeof value === "bigint") return value.toString();
  if (typeof value === "number" && !Number.isFinite(value)) return String(value);
  if (value === null || typeof value !== "object") return value;
  if (value instanceof Date) return value.toISOString();
  if (value instanceof StoredFile) return { file: value.url, size: value.size };
  if (value instanceof Error) return { name: value.name, message: value.message };
  if (ArrayBuffer.isView(value)) {
    return value instanceof DataView
      ? Array.from(new Uint8Array(value.buffer, value.byteOffset, value.byteLength))
      : Array.from(
        value as unknown as ArrayLike<number | bigint>,
        (v) => plain(v, path, ancestors),
      );
  }
  if (value instanceof ArrayBuffer) return Array.from(new Uint8Array(value));
  if (ancestors.has(value)) {
    throw new TypeError(`it refers to itself at ${path} (a circular structure JSON cannot hold)`);
  }
  ancestors.add(value);
  try {
    const at = (key: unknown) =>
      `${path}${typeof key === "number" ? `[${key}]` : `.${String(key)}`}`;
    if (value instanceof Map) {
      const stringKeys = [...value.keys()].every((k) => typeof k === "string");
      return stringKeys
        ? Object.fromEntries([...value].map(([k, v]) => [k, plain(v, at(k), ancestors)]))
        : [...value].map(([k, v], i) => [plain(k, at(i), ancestors), plain(v, at(i), ancestors)]);
    }
    if (value instanceof Set) return [...value].map((v, i) => plain(v, at(i), ancestors));
    if (Array.isArray(value)) return value.map((v, i) => plain(v, at(i), ancestors));
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, plain(v, at(k), ancestors)]),
    );
  } finally {
    ancestors.delete(value);
  }
}

function csvCell(value: unknown): string {
  const plain = toJsonValue(value);
  const text = plain === null
    ? ""
    : typeof plain === "object"
    ? JSON.stringify(plain)
    : String(plain);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** The format for an output file: `.csv` means CSV, anything else JSON lines. */
export function formatFor(path: string | undefined): Format {
  return path?.toLowerCase().endsWith(".csv") ? "csv" : "jsonl";
}

/** Writes `{input, result}` rows in a format; with `index`, `{index, input, result}`. */
export class ResultWriter {
  readonly #format: Format;
  readonly #write: (text: string) => void | Promise<void>;
  readonly #index: boolean;
  #started = false;

  /**
   * Create a writer that hands text to `write`. With `options.index`, each
   * row starts with the input's index (rows out of input order need it).
   */
  constructor(
    format: Format,
    write: (text: string) => void | Promise<void>,
    options: { index?: boolean } = {},
  ) {
    this.#format = format;
    this.#write = write;
    this.#index = options.index ?? false;
  }

  /**
   * Write the row of input `index` (which starts the row when the writer was
   * made with `index`).
   *
   * @throws {TypeError} The input or result cannot be written in this format (a cycle).
   */
  async row(index: number, input: unknown, result: unknown): Promise<void> {
    const cell = (what: string, value: unknown, convert: (v: unknown) => unknown) => {
      try {
        return convert(value);
      } catch (error) {
        throw new TypeError(
          `Cannot write ${what} as ${this.#format}: ${
            errorMessage(error)
          }; map from a script (see README) to handle such values yourself`,
        );
      }
    };
    if (this.#format === "jsonl") {
      await this.#write(
        JSON.stringify({
          ...(this.#index ? { index } : {}),
          input: cell(`input ${index}`, input, toJsonValue),
          result: cell(`the result of input ${index}`, result, toJsonValue),
        }) + "\n",
      );
      return;
    }
    const line = `${cell(`input ${index}`, input, csvCell)},${
      cell(`the result of input ${index}`, result, csvCell)
    }\n`;
    if (!this.#started) {
      this.#started = true;
      await this.#write(this.#header());
    }
    await this.#write(`${this.#index ? `${index},` : ""}${line}`);
  }

  /** Write the CSV header if no row came. */
  async end(): Promise<void> {
    if (this.#format === "csv" && !this.#started) await this.#write(this.#header());
  }

  #header(): string {
    return this.#index ? "index,input,result\n" : "input,result\n";
  }
}

/**
 * Text handed on in chunks rather than one write per row: when `limit`
 * characters wait, `delay` ms after the first waiting text (so a slow job's
 * rows still show as they come), and at {@linkcode BufferedText.flush}. A write
 * that failed (a closed pipe) is thrown by the next call.
 */
export class BufferedText {
  readonly #write: (text: string) => Promise<void>;
  readonly #limit: number;
  readonly #delay: number;
  #parts: string[] = [];
  #size = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #chain: Promise<void> = Promise.resolve();
  #failed: { error: unknown } | undefined;

  /** Hand text on to `write`; defaults: `limit` 64 KiB, `delay` 20 ms. */
  constructor(
    write: (text: string) => Promise<void>,
    options: { limit?: number; delay?: number } = {},
  ) {
    this.#write = write;
    this.#limit = options.limit ?? 65_536;
    this.#delay = options.delay ?? 20;
  }

  /** Add text; waits only when a full chunk is written. */
  async add(text: string): Promise<void> {
    if (this.#failed) throw this.#failed.error;
    this.#parts.push(text);
    this.#size += text.length;
    if (this.#size >= this.#limit) await this.flush();
    else this.#timer ??= setTimeout(() => void this.flush().catch(() => {}), this.#delay);
  }

  /** Write everything added so far. */
  async flush(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#size > 0) {
      const text = this.#parts.join("");
      this.#parts = [];
      this.#size = 0;
      this.#chain = this.#chain.then(() => this.#failed ? undefined : this.#write(text)).catch(
        (error) => {
          this.#failed ??= { error };
        },
      );
    }
    await this.#chain;
    if (this.#failed) throw this.#failed.error;
  }
}
