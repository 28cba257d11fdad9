/**
 * A container's environment as the kubelet builds it: `envFrom`, then `env` in order (each
 * value expanded against what precedes it), with downward-API `fieldRef` and
 * `resourceFieldRef` values and ConfigMap/Secret keys read through the API.
 *
 * @module
 */

import type { V1Container, V1EnvVar, V1Pod } from "@kubernetes/client-node";
import { expand } from "./expand.ts";
import { parseQuantity } from "./quantity.ts";

/** Where env values that live outside the pod come from. */
export interface EnvSources {
  /** The data of a ConfigMap, or `undefined` when it does not exist. */
  configMap(namespace: string, name: string): Promise<Record<string, string> | undefined>;
  /** The decoded data of a Secret, or `undefined` when it does not exist. */
  secret(namespace: string, name: string): Promise<Record<string, string> | undefined>;
  /** Node allocatable, the default of `resourceFieldRef` on an unset limit. */
  allocatable: { cpu: string; memory: string; "ephemeral-storage": string };
  /** The node's IP, for `status.hostIP` and `status.podIP`. */
  hostIP: string;
}

/** A container cannot be configured (the kubelet's `CreateContainerConfigError`). */
export class ContainerConfigError extends Error {
  override name = "ContainerConfigError";
}

/**
 * Build the environment variables a container declares.
 *
 * @param pod The pod.
 * @param container One of its containers.
 * @param sources ConfigMaps, Secrets and node facts.
 * @param base Variables set before the container's own (they are visible to `$(VAR)`).
 * @returns The container's variables, in declaration order.
 * @throws {ContainerConfigError} When a reference cannot be resolved.
 */
export async function containerEnv(
  pod: V1Pod,
  container: V1Container,
  sources: EnvSources,
  base: Record<string, string> = {},
): Promise<Record<string, string>> {
  const namespace = pod.metadata?.namespace ?? "default";
  const env: Record<string, string> = {};
  for (const from of container.envFrom ?? []) {
    const ref = from.configMapRef ?? from.secretRef;
    if (!ref?.name) continue;
    const data = from.configMapRef
      ? await sources.configMap(namespace, ref.name)
      : await sources.secret(namespace, ref.name);
    if (!data) {
      if (ref.optional) continue;
      const kind = from.configMapRef ? "configmap" : "secret";
      throw new ContainerConfigError(`${kind} "${ref.name}" not found`);
    }
    for (const [key, value] of Object.entries(data)) env[`${from.prefix ?? ""}${key}`] = value;
  }
  const lookup = (name: string) => env[name] ?? base[name];
  for (const variable of container.env ?? []) {
    const value = await envValue(pod, container, variable, sources, lookup);
    if (value !== undefined) env[variable.name] = value;
  }
  return env;
}

async function envValue(
  pod: V1Pod,
  container: V1Container,
  variable: V1EnvVar,
  sources: EnvSources,
  lookup: (name: string) => string | undefined,
): Promise<string | undefined> {
  const from = variable.valueFrom;
  if (!from) return expand(variable.value ?? "", lookup);
  const namespace = pod.metadata?.namespace ?? "default";
  if (from.fieldRef) return fieldValue(pod, from.fieldRef.fieldPath, sources.hostIP);
  if (from.resourceFieldRef) {
    const target = from.resourceFieldRef.containerName
      ? pod.spec?.containers.find((c) => c.name === from.resourceFieldRef?.containerName)
      : container;
    return resourceValue(
      target ?? container,
      from.resourceFieldRef.resource,
      from.resourceFieldRef.divisor,
      sources,
    );
  }
  const keyRef = from.configMapKeyRef ?? from.secretKeyRef;
  if (keyRef) {
    const kind = from.configMapKeyRef ? "configmap" : "secret";
    const data = from.configMapKeyRef
      ? await sources.configMap(namespace, keyRef.name ?? "")
      : await sources.secret(namespace, keyRef.name ?? "");
    const value = data?.[keyRef.key];
    if (value === undefined && !keyRef.optional) {
      throw new ContainerConfigError(
        data
          ? `couldn't find key ${keyRef.key} in ${kind} ${namespace}/${keyRef.name}`
          : `${kind} "${keyRef.name}" not found`,
      );
    }
    return value;
  }
  throw new ContainerConfigError(`env ${variable.name}: unsupported valueFrom source`);
}

/**
 * The value of a downward-API field path, as the kubelet resolves it.
 *
 * @param pod The pod.
 * @param path E.g. `metadata.name` or `metadata.labels['batch.kubernetes.io/job-completion-index']`.
 * @param hostIP The node's IP (pods share it here).
 * @returns The value (an absent label or annotation yields `""`).
 * @throws {ContainerConfigError} For a path the kubelet does not support.
 */
export function fieldValue(pod: V1Pod, path: string, hostIP: string): string {
  const meta = pod.metadata ?? {};
  const subscript = path.match(/^metadata\.(labels|annotations)\['(.*)'\]$/);
  if (subscript) {
    const map = subscript[1] === "labels" ? meta.labels : meta.annotations;
    return map?.[subscript[2] ?? ""] ?? "";
  }
  switch (path) {
    case "metadata.name":
      return meta.name ?? "";
    case "metadata.namespace":
      return meta.namespace ?? "";
    case "metadata.uid":
      return meta.uid ?? "";
    case "metadata.labels":
      return formatMap(meta.labels);
    case "metadata.annotations":
      return formatMap(meta.annotations);
    case "spec.nodeName":
      return pod.spec?.nodeName ?? "";
    case "spec.serviceAccountName":
      return pod.spec?.serviceAccountName ?? "";
    case "status.hostIP":
    case "status.hostIPs":
    case "status.podIP":
    case "status.podIPs":
      return hostIP;
    default:
      throw new ContainerConfigError(`unsupported fieldRef path "${path}"`);
  }
}

function formatMap(map: Record<string, string> | undefined): string {
  return Object.entries(map ?? {})
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([key, value]) => `${key}=${JSON.stringify(value)}`)
    .join("\n");
}

function resourceValue(
  container: V1Container,
  resource: string,
  divisor: string | undefined,
  sources: EnvSources,
): string {
  const [kind, name] = resource.split(".") as [string, keyof EnvSources["allocatable"]];
  const declared = kind === "limits"
    ? container.resources?.limits?.[name]
    : kind === "requests"
    ? container.resources?.requests?.[name]
    : undefined;
  const fallback = sources.allocatable[name];
  if (fallback === undefined || (kind !== "limits" && kind !== "requests")) {
    throw new ContainerConfigError(`unsupported resourceFieldRef "${resource}"`);
  }
  const value = parseQuantity(declared ?? (kind === "limits" ? fallback : "0"));
  const by = parseQuantity(divisor ?? "1");
  return String(Math.ceil(value / by));
}
