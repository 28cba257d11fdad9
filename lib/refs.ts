/**
 * References inside values (shared values, files): small marked objects
 * that travel through storage as plain objects and get their meaning back on
 * the other side. They are looked for where a user would put them: in
 * arrays, plain objects, Maps and Sets, up to {@linkcode REF_DEPTH} levels
 * deep; typed arrays and class instances are not looked into.
 *
 * @module
 */

/** How deep references are looked for. */
export const REF_DEPTH = 6;

/** Whether a value is an object marked with `kind` (`{ kind: "kubeface.file", … }`). */
export function isKind(value: unknown, kind: string): value is Record<string, unknown> {
  return value !== null && typeof value === "object" &&
    (value as Record<string, unknown>).kind === kind;
}

function isContainer(value: unknown): value is object {
  return value !== null && typeof value === "object" && !ArrayBuffer.isView(value) &&
    (Array.isArray(value) || value instanceof Map || value instanceof Set ||
      Object.getPrototypeOf(value) === Object.prototype);
}

/** The references of `kind` in a value. */
export function* findRefs(
  value: unknown,
  kind: string,
  depth = 0,
): Generator<Record<string, unknown>> {
  if (isKind(value, kind)) {
    yield value;
    return;
  }
  if (depth >= REF_DEPTH || !isContainer(value)) return;
  const items = value instanceof Map
    ? value.values()
    : value instanceof Set || Array.isArray(value)
    ? value
    : Object.values(value);
  for (const item of items) yield* findRefs(item, kind, depth + 1);
}

/**
 * Replace the references of `kind` in a value, in place, with what
 * `replace` returns; returns the value, or the replacement when the value
 * itself is a reference.
 */
export function replaceRefs(
  value: unknown,
  kind: string,
  replace: (ref: Record<string, unknown>) => unknown,
  depth = 0,
): unknown {
  if (isKind(value, kind)) return replace(value);
  if (depth >= REF_DEPTH || !isContainer(value)) return value;
  const next = (item: unknown) => replaceRefs(item, kind, replace, depth + 1);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = next(value[i]);
  } else if (value instanceof Map) {
    for (const [key, item] of value) value.set(key, next(item));
  } else if (value instanceof Set) {
    const items = [...value];
    value.clear();
    for (const item of items) value.add(next(item));
  } else {
    const record = value as Record<string, unknown>;
    for (const key of Object.keys(record)) record[key] = next(record[key]);
  }
  return value;
}
