/**
 * `$(VAR)` expansion in env values, command and args, as Kubernetes does it
 * (k8s.io/kubernetes third_party/forked/golang/expansion): `$(NAME)` becomes the variable's
 * value, an undefined `$(NAME)` stays as written, and `$$` is an escaped `$`.
 *
 * @module
 */

/**
 * Expand `$(NAME)` references in `input`.
 *
 * @param input The text to expand.
 * @param lookup Returns a variable's value, or `undefined` when it is not defined.
 * @returns The expanded text.
 */
export function expand(input: string, lookup: (name: string) => string | undefined): string {
  let out = "";
  let checkpoint = 0;
  for (let cursor = 0; cursor < input.length; cursor++) {
    if (input[cursor] !== "$" || cursor + 1 >= input.length) continue;
    out += input.slice(checkpoint, cursor);
    const rest = input.slice(cursor + 1);
    let advance = 1;
    if (rest[0] === "$") {
      out += "$";
    } else if (rest[0] === "(") {
      const close = rest.indexOf(")");
      if (close === -1) {
        out += "$(";
      } else {
        const name = rest.slice(1, close);
        out += lookup(name) ?? `$(${name})`;
        advance = close + 1;
      }
    } else {
      out += `$${rest[0]}`;
    }
    cursor += advance;
    checkpoint = cursor + 1;
  }
  return out + input.slice(checkpoint);
}
