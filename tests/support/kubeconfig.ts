/**
 * A kubeconfig whose API clients count the calls they make, to check (and
 * benchmark) how many requests the Kubernetes backend sends.
 *
 * @module
 */

import { KubeConfig } from "@kubernetes/client-node";

/** Counts the calls of every API client made from it (watches are not API client calls). */
export class CountingKubeConfig extends KubeConfig {
  /** The methods called, in order. */
  readonly calls: string[] = [];

  /** An API client whose method calls are recorded in {@linkcode calls}. */
  override makeApiClient<T>(apiClientType: new (config: never) => T): T {
    const client = super.makeApiClient(apiClientType as never) as T & object;
    return new Proxy(client, {
      get: (target, property, receiver) => {
        const value = Reflect.get(target, property, receiver);
        if (typeof value !== "function") return value;
        return (...args: unknown[]) => {
          this.calls.push(String(property));
          return value.apply(target, args);
        };
      },
    });
  }
}
