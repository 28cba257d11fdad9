// deno-lint-ignore-file no-console
/**
 * The storages and backends a suite runs against. One suite, defined once,
 * runs on every target: storage `local` (a temporary directory) and `gcs`
 * (the fake-gcs-server emulator, or a real bucket when
 * `KUBEFACE_TEST_STORAGE=gs://…`), backend `local` (a process per attempt),
 * `warm` (the local backend's pool of warm workers), `container`,
 * `kubernetes` (pods of the stock Deno image, which bootstrap the worker
 * from storage), `kubernetes-image` (pods of the worker image,
 * `--worker-image`) and `kubernetes-warm` (warm pods of the stock image,
 * `--warm`; only for the tests that ask for it with `warm: true`, to keep
 * the suite's time). Pods run in containers on the test cluster's real node,
 * with the host's network (a pod template patch), so they reach the GCS
 * emulator on loopback.
 *
 * Which ones run: `KUBEFACE_TEST_STORAGES` and `KUBEFACE_TEST_BACKENDS`
 * (comma-separated; default: every one whose service is there). With
 * `CI=true`, a service that is missing fails the suite loudly instead of
 * being skipped.
 *
 * @module
 */

import { BatchV1Api, CoreV1Api, type V1Job, type V1Pod } from "@kubernetes/client-node";
import type { ClientOptions } from "../../mod.ts";
import { JOB_LABEL, jobLabel } from "../../lib/backends/kubernetes/names.ts";
import { type Emulator, emulatorCacheDir, startEmulator } from "../infra/gcs_emulator.ts";
import {
  clusterTest,
  KUBECONFIG_ENV,
  kubectl,
  type TestCluster,
  testCluster,
} from "../infra/cluster/cluster.ts";
import { defaultImage } from "../../lib/image/tag.ts";
import { containerUnavailable } from "./container.ts";
import { MARKER_ROOT } from "./jobs.ts";

/** A storage kind tests run against. */
export type StorageKind = "local" | "gcs";
/** A backend kind tests run against; `warm` is the local backend's warm pool. */
export type BackendKind = "local" | "warm" | "container" | "kubernetes";

/**
 * How a Kubernetes pod gets the worker: `stock`, the stock Deno image with
 * kubeface's bootstrap (the default), or `image`, the worker image of
 * `deno task image:build` (`--worker-image`).
 */
export type Bootstrap = "stock" | "image";

/** A fresh, empty storage root for one test. */
export interface TestStorage extends AsyncDisposable {
  /** Root URL to give kubeface. */
  url: string;
}

/** One storage × backend combination. */
export interface Target {
  /** E.g. `local+gcs`: backend, then storage. */
  name: string;
  storage: StorageKind;
  backend: BackendKind;
  /** For `kubernetes`: how pods get the worker. */
  bootstrap?: Bootstrap;
  /** For `kubernetes`: warm pods (`kubernetes-warm`). */
  warm?: boolean;
  /** Whether its services are here; otherwise why not. */
  unavailable?: string;
  /** A new empty storage root. */
  newStorage(): Promise<TestStorage>;
  /** Client options for this target and a storage root. */
  client(storage: string): Promise<ClientOptions>;
}

const inCi = () => Deno.env.get("CI") === "true";

function listEnv(name: string): string[] | undefined {
  const value = Deno.env.get(name);
  return value ? value.split(",").map((s) => s.trim()).filter(Boolean) : undefined;
}

let emulator: Promise<Emulator> | undefined;

/** The emulator of this test process, started on first use and stopped at exit. */
export function sharedEmulator(): Promise<Emulator> {
  emulator ??= startEmulator().then((e) => {
    Deno.env.set("STORAGE_EMULATOR_HOST", e.url);
    globalThis.addEventListener("unload", () => void e[Symbol.asyncDispose]());
    return e;
  });
  return emulator;
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

function gcsUnavailable(): string | undefined {
  if (Deno.env.get("KUBEFACE_TEST_STORAGE")?.startsWith("gs://")) return undefined;
  if (!exists(`${emulatorCacheDir()}/fake-gcs-server`)) {
    return "the GCS emulator is not built; run `deno task test` (it builds it) or `deno run -A tests/infra/gcs_emulator.ts`";
  }
  return undefined;
}

let bucketCounter = 0;

async function newGcsStorage(): Promise<TestStorage> {
  const real = Deno.env.get("KUBEFACE_TEST_STORAGE");
  if (real?.startsWith("gs://")) {
    const url = `${real.replace(/\/?$/, "/")}test-${crypto.randomUUID().slice(0, 8)}/`;
    return {
      url,
      async [Symbol.asyncDispose]() {
        const { openStorage } = await import("../../mod.ts");
        await using storage = await openStorage(url);
        for await (const { key } of storage.list("")) await storage.delete(key);
      },
    };
  }
  const e = await sharedEmulator();
  const bucket = `kf-test-${Deno.pid}-${++bucketCounter}`;
  await e.createBucket(bucket);
  return { url: `gs://${bucket}/runs/`, async [Symbol.asyncDispose]() {} };
}

async function newLocalStorage(): Promise<TestStorage> {
  const dir = await Deno.makeTempDir({ prefix: "kubeface-test-" });
  return {
    url: dir,
    async [Symbol.asyncDispose]() {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

function kubernetesUnavailable(bootstrap: Bootstrap): string | undefined {
  if (!Deno.env.get(KUBECONFIG_ENV)) {
    return `${KUBECONFIG_ENV} is not set; run \`deno task test\` (it starts the test cluster) or \`deno task cluster:up\``;
  }
  if (bootstrap === "image") return workerImageUnavailable();
  return undefined;
}

/** Why the worker image cannot run on the test cluster's node, if it cannot. */
function workerImageUnavailable(): string | undefined {
  const image = defaultImage();
  const dir = Deno.env.get(KUBECONFIG_ENV)!.replace(/[^/]*$/, "");
  let images: string[] = [];
  try {
    images = JSON.parse(Deno.readTextFileSync(`${dir}state.json`)).images ?? [];
  } catch { /* no state: not a cluster of cluster:up */ }
  return images.includes(image)
    ? undefined
    : `the worker image ${image} is not imported into the test cluster; run \`deno task test\` (it builds and imports it)`;
}

/**
 * The pod template patch of every test Job: host networking (no pod may
 * have an address of its own here; pods reach the GCS emulator on
 * loopback), and the marker root mounted at the same path, so tasks can
 * leave markers for the test (see `withMarkers`).
 */
export function testPodPatch(): Record<string, unknown> {
  const volume = "kubeface-test-markers";
  return {
    spec: {
      hostNetwork: true,
      volumes: [{ name: volume, hostPath: { path: MARKER_ROOT, type: "DirectoryOrCreate" } }],
      containers: [{ name: "worker", volumeMounts: [{ name: volume, mountPath: MARKER_ROOT }] }],
    },
  };
}

let patchFile: string | undefined;

/** {@link testPodPatch} written to a file, for `--pod-template-patch`. */
export function testPodPatchFile(): string {
  if (!patchFile) {
    patchFile = Deno.makeTempFileSync({ prefix: "kubeface-pod-patch-", suffix: ".json" });
    Deno.writeTextFileSync(patchFile, JSON.stringify(testPodPatch(), null, 2));
    const file = patchFile;
    globalThis.addEventListener("unload", () => Deno.removeSync(file));
  }
  return patchFile;
}

let namespace: Promise<{ cluster: TestCluster; namespace: string }> | undefined;

/**
 * The namespace this test process runs Kubernetes jobs in: created once,
 * with the Role of docs/rbac.yaml bound to the cluster's non-admin user, so
 * the master runs with exactly the permissions the docs ask for.
 */
export function testNamespace(): Promise<{ cluster: TestCluster; namespace: string }> {
  namespace ??= (async () => {
    const cluster = (await testCluster())!;
    const name = `kf-test-${Deno.pid}-${crypto.randomUUID().slice(0, 6)}`;
    const rbac = new URL("../../docs/rbac.yaml", import.meta.url).pathname;
    for (
      const args of [
        ["create", "namespace", name],
        ["apply", "-n", name, "-f", rbac],
        [
          "create",
          "rolebinding",
          "kubeface-master",
          "-n",
          name,
          "--role=kubeface-master",
          `--user=${cluster.userName}`,
        ],
      ]
    ) {
      const r = await kubectl(cluster, args);
      if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")} failed: ${r.stderr}`);
    }
    globalThis.addEventListener("unload", () => {
      new Deno.Command(cluster.kubectl, {
        args: [
          `--kubeconfig=${cluster.adminKubeconfig}`,
          "delete",
          "namespace",
          name,
          "--wait=false",
        ],
        stdout: "null",
        stderr: "null",
      }).outputSync();
    });
    return { cluster, namespace: name };
  })();
  return namespace;
}

/**
 * Timings of the test's warm pods: a heartbeat a second (a killed pod is
 * lost after four), and idle pods exit after 20 s.
 */
export const TEST_WARM_TIMINGS = { heartbeatMs: 1000, idleMs: 20_000, pollMs: 500 };

async function clientFor(
  backend: BackendKind,
  url: string,
  bootstrap: Bootstrap = "stock",
  warm = false,
): Promise<ClientOptions> {
  switch (backend) {
    case "warm":
      return { storage: url, backend: "local", local: { warm: true } };
    case "kubernetes": {
      const { cluster, namespace } = await testNamespace();
      return {
        storage: url,
        backend,
        kubernetes: {
          kubeconfig: cluster.userKubeconfig,
          namespace,
          unstartableTimeoutMs: 60_000,
          cpu: KUBERNETES_TEST_CPU,
          // Every image is imported into the node; a missing one must fail, never be pulled.
          imagePullPolicy: "Never",
          podTemplatePatch: testPodPatch(),
          ...(bootstrap === "image" ? { image: defaultImage(), workerImage: true } : {}),
          ...(warm ? { warm: true, warmTimings: TEST_WARM_TIMINGS } : {}),
        },
      };
    }
    default:
      return { storage: url, backend };
  }
}

/** The test node has 2 CPUs: the default request of 1 CPU would run two pods at a time. */
const KUBERNETES_TEST_CPU = "100m";

/** Every target selected by the environment. */
export function targets(): Target[] {
  const storages = (listEnv("KUBEFACE_TEST_STORAGES") ?? ["local", "gcs"]) as StorageKind[];
  const kinds = listEnv("KUBEFACE_TEST_BACKENDS") ?? ["local", "warm"];
  const out: Target[] = [];
  for (const kind of kinds) {
    const backend = (kind.startsWith("kubernetes") ? "kubernetes" : kind) as BackendKind;
    const warm = kind === "kubernetes-warm";
    const bootstrap: Bootstrap | undefined = backend !== "kubernetes"
      ? undefined
      : kind === "kubernetes-image"
      ? "image"
      : "stock";
    for (const storage of storages) {
      // Pods reach storage as a real cluster's would: through GCS, not a local path.
      if (backend === "kubernetes" && storage !== "gcs") continue;
      const unavailable = (backend === "container" ? containerUnavailable() : undefined) ??
        (bootstrap ? kubernetesUnavailable(bootstrap) : undefined) ??
        (storage === "gcs" ? gcsUnavailable() : undefined);
      out.push({
        name: `${kind}+${storage}`,
        storage,
        backend,
        bootstrap,
        ...(warm ? { warm } : {}),
        unavailable,
        newStorage: storage === "gcs" ? newGcsStorage : newLocalStorage,
        client: (url) => clientFor(backend, url, bootstrap, warm),
      });
    }
  }
  return out;
}

/** Options of {@linkcode targetTest}. */
export interface TargetTestOptions {
  /** Run only on these backends. */
  backends?: BackendKind[];
  /** Run only on these storages. */
  storages?: StorageKind[];
  /**
   * Run on the `kubernetes-warm` target too (warm pods): only the tests
   * chosen for it, to keep the suite's time.
   *
   * @default {false}
   */
  warm?: boolean;
}

/**
 * Define one test per target. The test body gets the target and a fresh
 * storage URL. A target whose service is missing fails in CI and is skipped
 * (with a printed reason) elsewhere.
 */
export function targetTest(
  name: string,
  fn: (target: Target, storage: string) => Promise<void>,
  options: TargetTestOptions = {},
): void {
  for (const target of targets()) {
    if (options.backends && !options.backends.includes(target.backend)) continue;
    if (options.storages && !options.storages.includes(target.storage)) continue;
    if (target.warm && !options.warm) continue;
    const title = `${name} [${target.name}]`;
    if (target.unavailable && !inCi()) {
      console.log(`skipping "${title}": ${target.unavailable}`);
      Deno.test({ name: title, ignore: true, fn() {} });
      continue;
    }
    Deno.test({
      name: title,
      sanitizeResources: false,
      sanitizeOps: false,
      async fn() {
        if (target.unavailable) throw new Error(`CI=true but ${target.unavailable}`);
        await using storage = await target.newStorage();
        await fn(target, storage.url);
      },
    });
  }
}

/** What a Kubernetes test gets: the cluster, its namespace, a fresh bucket and client options. */
export interface KubernetesTestContext {
  cluster: TestCluster;
  namespace: string;
  storage: string;
  client: ClientOptions;
  /** How the pods get the worker. */
  bootstrap: Bootstrap;
  /** The backend flags of `kubeface map` for the same: the patch file, and the worker image. */
  backendFlags: string[];
}

/** Options of {@linkcode kubernetesTest}. */
export interface KubernetesTestOptions {
  /**
   * Run with these bootstraps; a test whose pods run no task (the API
   * server refuses, or the pod never starts) needs only one.
   *
   * @default {["stock", "image"]}
   */
  bootstraps?: Bootstrap[];
}

/**
 * Define a test of the Kubernetes backend (named `cluster: …`), once per
 * bootstrap (`[stock image]`, `[worker image]`): it runs the master as the
 * non-admin user under docs/rbac.yaml, with GCS (the emulator) as storage.
 * Skipped without the test cluster, failing in CI.
 */
export function kubernetesTest(
  name: string,
  fn: (ctx: KubernetesTestContext) => Promise<void>,
  options: KubernetesTestOptions = {},
): void {
  for (const bootstrap of options.bootstraps ?? ["stock", "image"]) {
    clusterTest(`${name} [${bootstrap === "stock" ? "stock" : "worker"} image]`, async () => {
      if (gcsUnavailable()) throw new Error(`the GCS emulator is needed: ${gcsUnavailable()}`);
      const missing = bootstrap === "image" ? workerImageUnavailable() : undefined;
      if (missing) throw new Error(`Cannot run with --worker-image: ${missing}`);
      const { cluster, namespace } = await testNamespace();
      await using storage = await newGcsStorage();
      await fn({
        cluster,
        namespace,
        storage: storage.url,
        client: await clientFor("kubernetes", storage.url, bootstrap),
        bootstrap,
        backendFlags: [
          "--cpu",
          String(KUBERNETES_TEST_CPU),
          "--pod-template-patch",
          testPodPatchFile(),
          "--image-pull-policy",
          "Never",
          ...(bootstrap === "image" ? ["--worker-image", defaultImage()] : []),
        ],
      });
    });
  }
}

/** Jobs of a kubeface job, as the admin sees them. */
export async function jobsOf(ctx: KubernetesTestContext, key: string): Promise<V1Job[]> {
  const batch = ctx.cluster.kubeConfig.makeApiClient(BatchV1Api);
  return (await batch.listNamespacedJob({
    namespace: ctx.namespace,
    labelSelector: `${JOB_LABEL}=${jobLabel(key)}`,
  })).items;
}

/** Pods of a kubeface job, as the admin sees them. */
export async function podsOf(ctx: KubernetesTestContext, key: string): Promise<V1Pod[]> {
  const core = ctx.cluster.kubeConfig.makeApiClient(CoreV1Api);
  return (await core.listNamespacedPod({
    namespace: ctx.namespace,
    labelSelector: `${JOB_LABEL}=${jobLabel(key)}`,
  })).items;
}

/**
 * The master's command line flags for the test namespace, as the non-admin user, with the test
 * pods' template patch (and the worker image, when the test runs with it).
 */
export function clusterFlags(ctx: KubernetesTestContext): string[] {
  return [
    "--backend",
    "kubernetes",
    "--storage",
    ctx.storage,
    "--kubeconfig",
    ctx.cluster.userKubeconfig,
    "--namespace",
    ctx.namespace,
    ...ctx.backendFlags,
  ];
}
