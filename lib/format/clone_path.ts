/**
 * Finding what keeps a value from being structured-cloned, so an error can
 * name it: `state.model.activate is a function` rather than V8's
 * `#<Object> could not be cloned`.
 *
 * @module
 */

import v8 from "node:v8";

/** Where a value that cannot be cloned sits, and what it is. */
export interface Uncloneable {
  /** A path from the root, e.g. `state.layers[2].fn` or `state.cache.get("k")`. */
  path: string;
  /** What it is, e.g. `a function`, `a symbol`, `a WeakMap`. */
  what: string;
}

function kind(value: object): string {
  const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
  return typeof name === "string" && name ? `a ${name}` : "an object";
}

function clones(value: unknown): boolean {
  try {
    v8.serialize(value);
    return true;
  } catch {
    return false;
  }
}

function keyPath(path: string, key: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

function mapKey(key: unknown): string {
  return typeof key === "string"
    ? JSON.stringify(key)
    : typeof key === "object"
    ? "…"
    : String(key);
}

/**
 * The first part of `value` (depth first) that structured clone cannot
 * copy, or `undefined` when every part can be copied.
 *
 * @param value The value to look through.
 * @param root How the path of the value itself is written, e.g. `"state"`.
 */
export function findUncloneable(value: unknown, root: string): Uncloneable | undefined {
  const seen = new Set<object>();
  const visit = (node: unknown, path: string): Uncloneable | undefined => {
    if (typeof node === "function") return { path, what: "a function" };
    if (typeof node === "symbol") return { path, what: "a symbol" };
    if (node === null || typeof node !== "object" || seen.has(node)) return undefined;
    seen.add(node);
    if (ArrayBuffer.isView(node) || node instanceof ArrayBuffer || node instanceof Date) {
      return undefined;
    }
    let children: [unknown, string][];
    if (Array.isArray(node)) children = node.map((item, i) => [item, `${path}[${i}]`]);
    else if (node instanceof Map) {
      children = [...node].flatMap(([k, v]): [unknown, string][] => [
        [k, `${path} (a key of the Map)`],
        [v, `${path}.get(${mapKey(k)})`],
      ]);
    } else if (node instanceof Set) {
      children = [...node].map((item) => [item, `${path} (an item of the Set)`]);
    } else children = Object.entries(node).map(([k, v]) => [v, keyPath(path, k)]);
    for (const [child, at] of children) {
      const found = visit(child, at);
      if (found) return found;
    }
    const plain = Array.isArray(node) || node instanceof Map || node instanceof Set ||
      Object.getPrototypeOf(node) === Object.prototype || Object.getPrototypeOf(node) === null;
    return plain || clones(node) ? undefined : { path, what: kind(node) };
  };
  return visit(value, root);
}
