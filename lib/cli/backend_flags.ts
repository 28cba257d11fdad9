/**
 * Flags of each backend, with how they turn into client options.
 *
 * @module
 */

import type { ClientOptions } from "../client.ts";
import { type FlagSpec, type FlagValues, str } from "./flags.ts";

/** The flags of one backend. */
export interface BackendFlagGroup {
  /** Title in `--help`. */
  title: string;
  flags: FlagSpec[];
  /** Copy the parsed values into client options. */
  apply(values: FlagValues, options: ClientOptions): void;
}

/** Flag groups of every backend. */
export const BACKEND_FLAG_GROUPS: BackendFlagGroup[] = [
  {
    title: "Local backend",
    flags: [
      {
        name: "deno",
        type: "string",
        value: "PATH",
        help: "Deno executable that runs workers",
        default: "this Deno",
      },
    ],
    apply(values, options) {
      const deno = str(values, "deno");
      if (deno) options.local = { ...options.local, deno };
    },
  },
];
