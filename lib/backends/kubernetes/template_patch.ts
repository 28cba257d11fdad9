/**
 * A strategic-merge patch of a pod template, as `kubectl patch` applies one
 * to a pod spec: maps merge key by key (`null` removes a key); lists whose
 * Kubernetes type declares a merge key merge element by element
 * (`containers`, `initContainers` and `volumes` by `name`, `env` by `name`,
 * `volumeMounts` by `mountPath`, …), other lists are replaced; a
 * `$patch: replace` map replaces instead of merging, and `$patch: delete`
 * removes a map or a list element (`{name: x, $patch: delete}`).
 *
 * So a patch can add a volume and mount it into kubeface's `worker`
 * container without restating the container:
 *
 * ```yaml
 * spec:
 *   volumes: [{ name: creds, secret: { secretName: creds } }]
 *   containers: [{ name: worker, volumeMounts: [{ name: creds, mountPath: /creds }] }]
 * ```
 *
 * @module
 */

import { CONTAINER } from "./names.ts";

/** A strategic-merge patch of a pod template: `metadata` and `spec` fragments. */
export type PodTemplatePatch = { readonly [key: string]: unknown };

/**
 * The YAML reader, from the Kubernetes client, which is big: loaded only
 * where a patch is given as text ({@linkcode loadTemplatePatchReader}), so
 * that importing kubeface does not load it.
 */
let loadAllYaml: ((text: string) => unknown[]) | undefined;

/** Load the YAML reader {@linkcode parseTemplatePatch} needs for YAML text. */
export async function loadTemplatePatchReader(): Promise<void> {
  loadAllYaml ??= (await import("@kubernetes/client-node")).loadAllYaml;
}

/** Whether {@linkcode parseTemplatePatch} can read `text` now: JSON, or YAML once the reader is loaded. */
export function canParseTemplatePatch(text: string): boolean {
  if (loadAllYaml) return true;
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

const CONTAINER_KEYS: Record<string, string> = {
  env: "name",
  volumeMounts: "mountPath",
  volumeDevices: "devicePath",
  ports: "containerPort",
};

/**
 * The merge keys of the lists of a pod template, by path (`[]` stands for
 * any element), from the `patchMergeKey` tags of Kubernetes' core/v1 types.
 */
export const MERGE_KEYS: Readonly<Record<string, string>> = {
  "metadata.ownerReferences": "uid",
  "spec.volumes": "name",
  "spec.imagePullSecrets": "name",
  "spec.hostAliases": "ip",
  "spec.topologySpreadConstraints": "topologyKey",
  "spec.resourceClaims": "name",
  "spec.schedulingGates": "name",
  ...Object.fromEntries(
    ["containers", "initContainers", "ephemeralContainers"].flatMap((list) => [
      [`spec.${list}`, "name"],
      ...Object.entries(CONTAINER_KEYS).map(([field, key]) => [`spec.${list}[].${field}`, key]),
    ]),
  ),
};

/** Lists of plain values that merge as sets instead of being replaced. */
const MERGED_VALUE_LISTS = new Set(["metadata.finalizers"]);

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function fail(path: string, problem: string): never {
  throw new TypeError(`Cannot apply the pod template patch: ${path} ${problem}`);
}

/**
 * Apply a strategic-merge patch to a pod template. Neither argument is changed.
 *
 * @param template The pod template kubeface made (`{ metadata, spec }`).
 * @param patch The patch.
 * @returns The patched template.
 * @throws {TypeError} The patch is not an object of `metadata` and `spec`, a
 *   directive is unknown, or a list element lacks its merge key; the message
 *   names the path and the fix.
 */
export function applyTemplatePatch<T extends object>(template: T, patch: PodTemplatePatch): T {
  if (!isObject(patch)) {
    fail("(the whole patch)", "is not an object; write e.g. {spec: {hostNetwork: true}}");
  }
  for (const key of Object.keys(patch)) {
    if (key !== "metadata" && key !== "spec") {
      fail(
        `'${key}'`,
        "is not a field of a pod template; patch metadata or spec, e.g. {spec: {hostNetwork: true}}",
      );
    }
  }
  return mergeObject(structuredClone(template) as JsonObject, patch as JsonObject, "", "") as T;
}

/**
 * Merge `patch` into `original`. `path` names the place for messages
 * (`spec.containers[name="worker"].env`), `schema` for the merge-key table
 * (`spec.containers[].env`).
 */
function mergeObject(
  original: JsonObject,
  patch: JsonObject,
  path: string,
  schema: string,
): JsonObject {
  const directive = patch.$patch;
  if (directive !== undefined) {
    if (directive === "replace") return stripDirectives(patch, path) as JsonObject;
    fail(
      `${path || "(the whole patch)"}.$patch`,
      `is '${directive}'; use replace here (delete removes a field or a list element)`,
    );
  }
  const out: JsonObject = { ...original };
  for (const [key, value] of Object.entries(patch)) {
    const at = path ? `${path}.${key}` : key;
    const sub = schema ? `${schema}.${key}` : key;
    if (key.startsWith("$")) {
      fail(at, "is a directive kubeface does not know; use $patch: replace or $patch: delete");
    }
    if (value === null || (isObject(value) && value.$patch === "delete")) {
      delete out[key];
    } else if (isObject(value)) {
      const base = out[key];
      out[key] = mergeObject(isObject(base) ? base : {}, value, at, sub);
    } else if (Array.isArray(value)) {
      const base = out[key];
      out[key] = mergeList(Array.isArray(base) ? base : [], value, at, sub);
    } else {
      out[key] = value;
    }
  }
  return out;
}

function mergeList(original: Json[], patch: Json[], path: string, schema: string): Json[] {
  if (patch.some((item) => isObject(item) && item.$patch === "replace")) {
    return patch.filter((item) => !(isObject(item) && item.$patch === "replace"))
      .map((item, i) => stripDirectives(item, `${path}[${i}]`));
  }
  if (MERGED_VALUE_LISTS.has(schema)) {
    return [...original, ...patch.filter((item) => !original.includes(item))];
  }
  const key = MERGE_KEYS[schema];
  if (key === undefined) return patch.map((item, i) => stripDirectives(item, `${path}[${i}]`));
  const out = [...original];
  patch.forEach((item, i) => {
    const at = `${path}[${i}]`;
    if (!isObject(item)) fail(at, `is not an object; ${path} holds objects merged by '${key}'`);
    const id = item[key];
    if (id === undefined || id === null) {
      fail(at, `has no '${key}', which ${path} is merged by; add it`);
    }
    const found = out.findIndex((existing) => isObject(existing) && existing[key] === id);
    if (item.$patch === "delete") {
      if (found >= 0) out.splice(found, 1);
      return;
    }
    const name = `${path}[${key}=${JSON.stringify(id)}]`;
    const base = found >= 0 ? out[found] as JsonObject : {};
    const merged = mergeObject(base, item, name, `${schema}[]`);
    if (found >= 0) out[found] = merged;
    else out.push(merged);
  });
  return out;
}

/**
 * Parse a pod template patch written as YAML or JSON (JSON is YAML). JSON
 * is read at once; YAML needs {@linkcode loadTemplatePatchReader} first
 * (the Kubernetes backend and the CLI load it).
 *
 * @param text The file's text.
 * @param source Where it came from, for messages, e.g. the file name.
 * @returns The patch, checked against a sample template.
 * @throws {TypeError} The text is not one YAML document holding a mapping of
 *   `metadata` and `spec`; the message names the source and the problem.
 */
export function parseTemplatePatch(text: string, source: string): PodTemplatePatch {
  let documents: unknown[];
  try {
    const all = loadAllYaml ? loadAllYaml(text) : [JSON.parse(text)];
    documents = all.filter((doc) => doc !== null && doc !== undefined);
  } catch (error) {
    const reason = error instanceof Error ? error.message.split("\n")[0] : String(error);
    throw new TypeError(
      `Cannot read the pod template patch '${source}': it is not valid YAML or JSON (${reason})`,
    );
  }
  if (documents.length !== 1) {
    throw new TypeError(
      `Cannot read the pod template patch '${source}': it holds ${documents.length} documents; give exactly one, e.g. spec: {hostNetwork: true}`,
    );
  }
  const patch = documents[0];
  if (!isObject(patch)) {
    throw new TypeError(
      `Cannot read the pod template patch '${source}': it is not a mapping; write a pod template fragment, e.g. spec: {hostNetwork: true}`,
    );
  }
  try {
    patchPodTemplate(
      { metadata: {}, spec: { containers: [{ name: CONTAINER }] } },
      patch,
      CONTAINER,
    );
  } catch (error) {
    throw new TypeError(
      `Cannot use the pod template patch '${source}': ${
        (error as Error).message.replace(/^Cannot apply the pod template patch: /, "")
      }`,
    );
  }
  return patch;
}

/**
 * Apply a patch to a pod template kubeface made, keeping what kubeface
 * needs: its labels and annotations, by which it finds its pods, and the
 * container that runs the task.
 *
 * @param template The pod template kubeface made.
 * @param patch The user's patch.
 * @param container The name of the container that runs the task.
 * @returns The patched template.
 * @throws {TypeError} The patch is malformed, or it removes `container`.
 */
export function patchPodTemplate<T extends PodTemplate>(
  template: T,
  patch: PodTemplatePatch,
  container: string,
): T {
  const out = applyTemplatePatch(template, patch);
  out.metadata = {
    ...out.metadata,
    labels: { ...out.metadata?.labels, ...template.metadata?.labels },
    annotations: { ...out.metadata?.annotations, ...template.metadata?.annotations },
  };
  if (!out.spec?.containers?.some((c) => c.name === container)) {
    throw new TypeError(
      `Cannot apply the pod template patch: it removes the container '${container}' that runs the task; patch that container by name instead of replacing the list`,
    );
  }
  return out;
}

/** What {@linkcode patchPodTemplate} needs to know of a pod template. */
export interface PodTemplate {
  metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: { containers?: { name: string }[] };
}

/** A patch value used as is (a replaced list or map): it may hold no directives. */
function stripDirectives(value: Json, path: string): Json {
  if (Array.isArray(value)) return value.map((item, i) => stripDirectives(item, `${path}[${i}]`));
  if (!isObject(value)) return value;
  const out: JsonObject = {};
  for (const [key, item] of Object.entries(value)) {
    if (key === "$patch") continue;
    if (key.startsWith("$")) fail(`${path}.${key}`, "is a directive kubeface does not know");
    out[key] = stripDirectives(item, `${path}.${key}`);
  }
  return out;
}
