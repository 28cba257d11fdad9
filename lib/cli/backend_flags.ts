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
      {
        name: "warm",
        type: "boolean",
        help: "keep one worker process per parallel slot, running many tasks each",
      },
    ],
    apply(values, options) {
      const deno = str(values, "deno");
      if (deno) options.local = { ...options.local, deno };
      if (values.warm === true) options.local = { ...options.local, warm: true };
    },
  },
  {
    title: "Container backend",
    flags: [
      {
        name: "container-cli",
        type: "string",
        value: "CLI",
        help: "podman or docker (or a path to one) that runs the worker containers",
        default: "podman if found, else docker",
      },
      {
        name: "image",
        type: "string",
        value: "IMAGE",
        help: "worker image (build it with `deno task image:build`)",
        default: "kubeface-worker:<version>-<sources hash>",
      },
      {
        name: "container-arg",
        type: "string",
        multiple: true,
        value: "FLAG",
        help: "extra flag for `run`, e.g. --container-arg=--memory=4g (repeatable)",
      },
    ],
    apply(values, options) {
      const cli = str(values, "container-cli");
      const image = str(values, "image");
      const runArgs = values["container-arg"];
      if (cli) options.container = { ...options.container, cli };
      if (image) options.container = { ...options.container, image };
      if (Array.isArray(runArgs) && runArgs.length > 0) {
        options.container = { ...options.container, runArgs };
      }
    },
  },
];
