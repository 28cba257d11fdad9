/**
 * Writing results as JSON lines or CSV. Values JSON cannot hold are turned
 * into the nearest plain form: BigInt → decimal string, Map → object (or
 * array of pairs), Set → array, typed arrays → arrays of numbers, Error →
 * `{name, message}`, `undefined` → `null`.
 *
 * @module
 */

/** Output formats. */
export const FORMATS = ["jsonl", "csv"] as const;

/** An output format. */
export type Format = typeof FORMATS[number];

/** A value in a form `JSON.stringify` keeps. */
export function toJsonValue(value: unknown): unknown {
  if (value === undefined) return null;
  if (typeof value === "bigint") return value.toString();
  if (typeof value === "number" && !Number.isFinite(value)) return String(value);
  if (value === null || typeof value !== "object") return value;
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Error) return { name: value.name, message: value.message };
  if (ArrayBuffer.isView(value)) {
    return value instanceof DataView
      ? Array.from(new Uint8Array(value.buffer, value.byteOffset, value.byteLength))
      : Array.from(value as unknown as ArrayLike<number | bigint>, toJsonValue);
  }
  if (value instanceof ArrayBuffer) return Array.from(new Uint8Array(value));
  if (value instanceof Map) {
    const stringKeys = [...value.keys()].every((k) => typeof k === "string");
    return stringKeys
      ? Object.fromEntries([...value].map(([k, v]) => [k, toJsonValue(v)]))
      : [...value].map(([k, v]) => [toJsonValue(k), toJsonValue(v)]);
  }
  if (value instanceof Set) return [...value].map(toJsonValue);
  if (Array.isArray(value)) return value.map(toJsonValue);
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toJsonValue(v)]));
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

  /** Write one row. */
  async row(input: unknown, result: unknown, index?: number): Promise<void> {
    const withIndex = this.#index && index !== undefined;
    if (this.#format === "jsonl") {
      await this.#write(
        JSON.stringify({
          ...(withIndex ? { index } : {}),
          input: toJsonValue(input),
          result: toJsonValue(result),
        }) + "\n",
      );
      return;
    }
    if (!this.#started) {
      this.#started = true;
      await this.#write(this.#header());
    }
    await this.#write(`${withIndex ? `${index},` : ""}${csvCell(input)},${csvCell(result)}\n`);
  }

  /** Write the CSV header if no row came. */
  async end(): Promise<void> {
    if (this.#format === "csv" && !this.#started) await this.#write(this.#header());
  }

  #header(): string {
    return this.#index ? "index,input,result\n" : "input,result\n";
  }
}
