/**
 * Flags of each backend, with how they turn into client options.
 *
 * @module
 */

import type { ClientOptions } from "../client.ts";
import {
  KUBERNETES_DEFAULTS,
  type KubernetesBackendOptions,
  parseToleration,
} from "../backends/kubernetes/options.ts";
import {
  canParseTemplatePatch,
  parseTemplatePatch,
} from "../backends/kubernetes/template_patch.ts";
import { duration, type FlagSpec, type FlagValues, int, keyValues, str } from "./flags.ts";
import { UsageError } from "./io.ts";

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
        help:
          "keep one worker per parallel slot, running many tasks each (a process, or a pod on Kubernetes)",
      },
    ],
    apply(values, options) {
      const deno = str(values, "deno");
      if (deno) options.local = { ...options.local, deno };
      if (values.warm === true) {
        options.local = { ...options.local, warm: true };
        options.kubernetes = { ...options.kubernetes, warm: true };
      }
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
        help: "worker image; the default one is built when missing",
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
  {
    title: "Kubernetes backend",
    flags: [
      {
        name: "kubeconfig",
        type: "string",
        value: "FILE",
        help: "kubeconfig file",
        default: "$KUBECONFIG or ~/.kube/config",
      },
      {
        name: "context",
        type: "string",
        value: "NAME",
        help: "kubeconfig context",
        default: "the current one",
      },
      {
        name: "namespace",
        type: "string",
        value: "NS",
        help: "namespace of the Jobs",
        default: "the context's, else default",
      },
      {
        name: "deno-image",
        type: "string",
        value: "IMAGE",
        help: "stock Deno image the pods bootstrap the worker in",
        default: KUBERNETES_DEFAULTS.image,
      },
      {
        name: "worker-image",
        type: "string",
        value: "IMAGE",
        help: "a kubeface worker image (lib/image/Dockerfile) instead",
      },
      {
        name: "image-pull-policy",
        type: "string",
        value: "POLICY",
        help: "Always, IfNotPresent or Never",
        default: KUBERNETES_DEFAULTS.imagePullPolicy,
      },
      {
        name: "service-account",
        type: "string",
        value: "NAME",
        help: "service account of the pods",
      },
      {
        name: "mount-service-account-token",
        type: "boolean",
        help: "mount its token into the pods",
      },
      {
        name: "cpu",
        type: "string",
        value: "QTY",
        help: "CPU request per task, e.g. 500m or 2; none for no request",
        default: KUBERNETES_DEFAULTS.cpu,
      },
      {
        name: "memory",
        type: "string",
        value: "QTY",
        help: "memory request (and limit) per task, e.g. 4Gi; none for no request",
        default: KUBERNETES_DEFAULTS.memory,
      },
      {
        name: "cpu-limit",
        type: "string",
        value: "QTY",
        help: "CPU limit per task",
        default: "none",
      },
      {
        name: "memory-limit",
        type: "string",
        value: "QTY",
        help: "memory limit per task; none for no limit",
        default: "the request",
      },
      { name: "gpus", type: "string", value: "N", help: "nvidia.com/gpu per task" },
      {
        name: "scratch-size",
        type: "string",
        value: "QTY",
        help: "size limit of a pod's /tmp (its scratch volume)",
        default: KUBERNETES_DEFAULTS.scratchSize,
      },
      {
        name: "node-selector",
        type: "string",
        multiple: true,
        value: "KEY=VALUE",
        help: "node label the pods need (repeatable)",
      },
      {
        name: "toleration",
        type: "string",
        multiple: true,
        value: "KEY[=VALUE][:EFFECT]",
        help: "taint the pods tolerate (repeatable)",
      },
      {
        name: "label",
        type: "string",
        multiple: true,
        value: "KEY=VALUE",
        help: "extra label of Jobs and pods (repeatable)",
      },
      {
        name: "annotation",
        type: "string",
        multiple: true,
        value: "KEY=VALUE",
        help: "extra annotation of Jobs and pods (repeatable)",
      },
      {
        name: "active-deadline",
        type: "string",
        value: "DURATION",
        help: "time a task's pod may run",
        default: "--timeout",
      },
      {
        name: "ttl-after-finished",
        type: "string",
        value: "DURATION",
        help: "how long a finished Kubernetes Job is kept",
        default: `${KUBERNETES_DEFAULTS.ttlSecondsAfterFinished}s`,
      },
      {
        name: "spot",
        type: "boolean",
        help: "run pods on GKE spot nodes (selector and toleration); see --grace",
      },
      {
        name: "pod-template-patch",
        type: "string",
        value: "FILE",
        help: "strategic-merge patch of every pod, YAML or JSON (see README)",
      },
      {
        name: "unstartable-timeout",
        type: "string",
        value: "DURATION",
        help:
          "how long a task may stay without its image, or unschedulable while no pod of the job runs",
        default: `${KUBERNETES_DEFAULTS.unstartableTimeoutMs / 60_000}m`,
      },
    ],
    apply(values, options) {
      const list = (name: string) => (values[name] as string[] | undefined) ?? [];
      const seconds = (name: string) => {
        const ms = duration(values, name);
        return ms === undefined ? undefined : Math.ceil(ms / 1000);
      };
      const workerImage = str(values, "worker-image");
      const gpus = int(values, "gpus");
      let tolerations;
      try {
        tolerations = list("toleration").map(parseToleration);
      } catch (error) {
        throw new UsageError((error as Error).message);
      }
      const k: KubernetesBackendOptions = {
        kubeconfig: str(values, "kubeconfig"),
        context: str(values, "context"),
        namespace: str(values, "namespace"),
        image: workerImage ?? str(values, "deno-image"),
        workerImage: workerImage ? true : undefined,
        imagePullPolicy: str(
          values,
          "image-pull-policy",
        ) as KubernetesBackendOptions["imagePullPolicy"],
        serviceAccount: str(values, "service-account"),
        mountServiceAccountToken: values["mount-service-account-token"] === true || undefined,
        cpu: quantity(values, "cpu"),
        memory: quantity(values, "memory"),
        cpuLimit: quantity(values, "cpu-limit"),
        memoryLimit: quantity(values, "memory-limit"),
        scratchSize: str(values, "scratch-size"),
        gpus,
        nodeSelector: list("node-selector").length
          ? keyValues(list("node-selector"), "node-selector")
          : undefined,
        tolerations: tolerations.length ? tolerations : undefined,
        labels: list("label").length ? keyValues(list("label"), "label") : undefined,
        annotations: list("annotation").length
          ? keyValues(list("annotation"), "annotation")
          : undefined,
        activeDeadlineSeconds: seconds("active-deadline"),
        ttlSecondsAfterFinished: seconds("ttl-after-finished"),
        unstartableTimeoutMs: duration(values, "unstartable-timeout"),
        spot: values.spot === true || undefined,
        podTemplatePatch: templatePatch(str(values, "pod-template-patch")),
      };
      const set = Object.fromEntries(Object.entries(k).filter(([, v]) => v !== undefined));
      if (Object.keys(set).length > 0) options.kubernetes = { ...options.kubernetes, ...set };
    },
  },
];

/** A resource quantity flag: its value, `null` for `none`, or `undefined` when not given. */
function quantity(values: FlagValues, name: string): string | null | undefined {
  const value = str(values, name);
  return value === "none" ? null : value;
}

/**
 * Read the file of `--pod-template-patch`: a missing or malformed file is a
 * usage error. YAML is checked here once the CLI has loaded the reader
 * (cli.ts), else handed on as text, which the backend reads.
 */
function templatePatch(file: string | undefined): KubernetesBackendOptions["podTemplatePatch"] {
  if (file === undefined) return undefined;
  let text: string;
  try {
    text = Deno.readTextFileSync(file);
  } catch (error) {
    throw new UsageError(
      `Cannot read the pod template patch '${file}': ${
        error instanceof Deno.errors.NotFound ? "no such file" : (error as Error).message
      }; give a YAML or JSON file to --pod-template-patch`,
    );
  }
  if (!canParseTemplatePatch(text)) return text;
  try {
    return parseTemplatePatch(text, file);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** Every backend flag, for parsing. */
export function backendFlags(): FlagSpec[] {
  return BACKEND_FLAG_GROUPS.flatMap((group) => group.flags);
}

/** The backend flag groups as help sections. */
export function backendHelpGroups(): [string, readonly FlagSpec[]][] {
  return BACKEND_FLAG_GROUPS.map((g): [string, readonly FlagSpec[]] => [g.title, g.flags]);
}

/** Copy every backend's parsed flags into client options. */
export function applyBackendFlags(values: FlagValues, options: ClientOptions): ClientOptions {
  for (const group of BACKEND_FLAG_GROUPS) group.apply(values, options);
  return options;
}
