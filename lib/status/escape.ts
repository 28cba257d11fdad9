/**
 * Escaping text for the HTML status page.
 *
 * @module
 */

/** Escape text for HTML: `&`, `<`, `>`, `"` and `'` become character references. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g;

/** Text without terminal colour codes, as worker output sometimes has. */
export function plainText(text: string): string {
  return text.replace(ANSI, "");
}

/**
 * JSON to place inside a `<script type="application/json">` element: every
 * `<` is written `\u003c`, so no `</script>` or `<!--` in a string can end
 * or change the element.
 */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, "\\u003c");
}
