/**
 * A task module that imports an npm package: `deno bundle` inlines it, so
 * workers need nothing installed.
 *
 * ```sh
 * deno run -A cli.ts map --module examples/slug.ts
 * ```
 *
 * @module
 */

import { kebabCase } from "change-case";

/** Titles to turn into URL slugs. */
export const inputs: string[] = [
  "Hello World",
  "A parallel map, on Kubernetes!",
  "kubefaceRunsTasks",
];

/** The URL slug of a title. */
export function task(title: string): string {
  return kebabCase(title);
}
