/**
 * The one place a backend implementation is chosen by name.
 *
 * @module
 */

import { type Backend, BACKEND_NAMES, type BackendName } from "./backend.ts";
import type { ContainerBackendOptions } from "./container.ts";
import type { KubernetesBackendOptions } from "./kubernetes/options.ts";
import type { LocalBackendOptions } from "./local.ts";

/** Options of every backend, each under its own name. */
export interface BackendOptions {
  /** Options of the local backend. */
  local?: LocalBackendOptions;
  /** Options of the container backend. */
  container?: ContainerBackendOptions;
  /** Options of the Kubernetes backend. */
  kubernetes?: KubernetesBackendOptions;
}

/**
 * Create a backend by name.
 *
 * @throws {TypeError} The name is not one of {@linkcode BACKEND_NAMES}.
 */
export async function createBackend(
  name: BackendName | string,
  options: BackendOptions = {},
): Promise<Backend> {
  switch (name) {
    case "local": {
      const { LocalBackend } = await import("./local.ts");
      return new LocalBackend(options.local);
    }
    case "container": {
      const { ContainerBackend } = await import("./container.ts");
      return new ContainerBackend(options.container);
    }
    case "kubernetes": {
      const { KubernetesBackend } = await import("./kubernetes/kubernetes.ts");
      return new KubernetesBackend(options.kubernetes);
    }
    default:
      throw new TypeError(
        `Cannot use backend '${name}': choose one of ${BACKEND_NAMES.join(", ")}`,
      );
  }
}
