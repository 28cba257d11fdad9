/**
 * What only the container backend does: containers are removed when they
 * end, a container killed from outside is a crash that is retried, a task
 * sees only what it was given, the image runs as a non-root user, and a
 * missing or failing engine is a clear error. The core suites
 * (`map_test.ts`, `lifecycle_test.ts`) also run on this backend.
 *
 * @module
 */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { ContainerBackend } from "../lib/backends/container.ts";
import { defaultUlimits } from "../lib/backends/container_host.ts";
import { runPlan } from "../lib/backends/container_run.ts";
import { defaultImage } from "../lib/image/tag.ts";
import { readStatus } from "../lib/catalog.ts";
import { JobLayout } from "../lib/format/layout.ts";
import { parsePermissions } from "../lib/permissions.ts";
import { openStorage } from "../lib/storage/storage.ts";
import { BackendError, Client, WorkerCrashError } from "../mod.ts";
import { kubeface } from "./support/cli.ts";
import { containersOf, containerUnavailable, killContainer, testCli } from "./support/container.ts";
import { collect, failure, fixture, waitFor, withMarkers } from "./support/jobs.ts";
import { targetTest } from "./support/targets.ts";

const calm = { speculationPercent: 0, retryDelayMs: 10 };
const only = { backends: ["container" as const] };

/** Wait until task 1 wrote its marker, then kill its container from outside. */
async function killTaskOne(job: string, dir: string): Promise<string> {
  await waitFor("task 1 to start", () => Deno.stat(`${dir}/pid`).then(() => true, () => undefined));
  const [name] = await waitFor(
    "task 1's container",
    () => containersOf(job, 1)[0] ? containersOf(job, 1) : undefined,
  );
  killContainer(name!);
  return name!;
}

targetTest(
  "a container killed from outside is a crash, not a task error",
  async (target, storage) => {
    await withMarkers(async (dir, perms) => {
      const run = new Client(await target.client(storage)).map(fixture("hang_on_marker.ts"), {
        ...calm,
        ...perms,
        maxRetries: 0,
      });
      const result = failure(run);
      await killTaskOne(run.job, dir);
      const error = await result;
      assert.ok(error instanceof WorkerCrashError, `expected a WorkerCrashError, got ${error}`);
      assert.equal(error.task, 1);
      assert.equal(error.kind, "crash");
      assert.match(
        error.message,
        /Task 1 \(input 1\) crashed 1 time\(s\) without a result: killed by SIGKILL/,
      );
    });
  },
  only,
);

targetTest(
  "a container killed from outside is retried and the job completes",
  async (target, storage) => {
    await withMarkers(async (dir, perms) => {
      const run = new Client(await target.client(storage)).map<number, number>(
        fixture("first_attempt_hangs.ts"),
        { ...calm, ...perms, maxRetries: 1 },
      );
      const results = collect(run);
      await killTaskOne(run.job, dir);
      assert.deepEqual(await results, [0, 10, 20, 30]);
      await using s = await openStorage(storage);
      const task1 = (await readStatus(s, run.job)).tasks[1]!;
      assert.deepEqual(task1.attempts.map((a) => a.outcome), ["crash", "ok"]);
      assert.match(task1.attempts[0]!.detail!, /killed by SIGKILL/);
    });
  },
  only,
);

targetTest(
  "a task's container is removed when it ends, or when it is stopped",
  async (target, storage) => {
    const client = new Client(await target.client(storage));
    const done = client.map(fixture("half.ts"), { ...calm, parallelism: 3 });
    assert.equal((await collect(done)).length, 9);
    assert.deepEqual(containersOf(done.job), [], "containers of a finished job");

    const stopped = client.map(fixture("forever.ts"), calm);
    const result = failure(stopped);
    await waitFor(
      "the container to run",
      () => containersOf(stopped.job).length > 0 ? true : undefined,
    );
    await stopped.cancel();
    await result;
    await waitFor(
      "the stopped container to go",
      () => containersOf(stopped.job).length === 0 ? true : undefined,
      10_000,
    );
  },
  only,
);

targetTest(
  "a task sees only the image, its storage and what it was granted, as a non-root user",
  async (target, storage) => {
    await withMarkers(async (dir) => {
      const repo = fileURLToPath(new URL("../README.md", import.meta.url));
      const home = Deno.env.get("HOME") ?? "/root";
      const storagePath = storage.startsWith("gs://") ? undefined : storage;
      const [seen] = await collect(new Client(await target.client(storage)).map<string[], {
        uid: number | null;
        root: string[];
        paths: Record<string, string>;
      }>(fixture("look_around.ts"), {
        ...calm,
        permissions: ["--allow-read", "--allow-sys", `--allow-write=${dir}`],
        inputs: [[
          repo,
          home,
          "/etc/shadow",
          "/usr/bin",
          dir,
          ...(storagePath ? [storagePath] : []),
        ]],
      }));
      assert.ok(seen!.uid !== null && seen!.uid !== 0, `the task ran as uid ${seen!.uid}`);
      assert.equal(seen!.paths[repo], "NotFound", "the repository is not visible");
      assert.equal(seen!.paths[home], "NotFound", "the home directory is not visible");
      assert.equal(seen!.paths["/etc/shadow"], "NotFound");
      assert.equal(seen!.paths["/usr/bin"], "NotFound", "the image has no tools besides deno");
      assert.equal(seen!.paths[dir], "directory", "a granted path is mounted");
      if (storagePath) {
        assert.equal(seen!.paths[storagePath], "directory", "local storage is mounted");
      }
      const unexpected = seen!.root.filter((name) =>
        ![
          "app",
          "deno-dir",
          "dev",
          "etc",
          "lib",
          "lib64",
          "proc",
          "run",
          "sys",
          "tmp",
          "usr",
          "var",
        ]
          .includes(name)
      );
      assert.deepEqual(unexpected, [], "nothing but the image's own directories at /");
    });
  },
  only,
);

targetTest("cleanup removes a job's leftover containers", async (target, storage) => {
  const backend = new ContainerBackend((await target.client(storage)).container);
  const cli = testCli()!;
  const image = defaultImage();
  const ulimits = await defaultUlimits({ command: cli, globalArgs: [] }, image);
  const job = `leftover-${crypto.randomUUID().slice(0, 8)}`;
  const started = await new Deno.Command(cli, {
    args: [
      ...[
        "run",
        "--detach",
        "--rm",
        "--name",
        `kubeface-${job}-0-x`,
        "--label",
        `kubeface.job=${job}`,
      ],
      ...ulimits.flatMap((limit) => ["--ulimit", limit]),
      ...[image, "eval", "setTimeout(() => {}, 60_000)"],
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.equal(started.code, 0, new TextDecoder().decode(started.stderr));
  assert.deepEqual(containersOf(job), [`kubeface-${job}-0-x`]);
  assert.deepEqual(await backend.cleanup(job), [`removed container kubeface-${job}-0-x`]);
  assert.deepEqual(containersOf(job), []);
  assert.deepEqual(await backend.cleanup(job), []);
}, { ...only, storages: ["local"] });

Deno.test("a container gets its storage and granted paths at the same path, and variables by name", async () => {
  const root = await Deno.makeTempDir({ prefix: "kubeface-test-" });
  try {
    const [storage, ro, rw] = [`${root}/runs`, `${root}/data`, `${root}/out`];
    for (const dir of [storage, ro, rw]) await Deno.mkdir(dir);
    await using opened = await openStorage(`file://${storage}/`);
    const job = {
      key: "plan-1",
      storage: opened,
      layout: new JobLayout("plan-1"),
      permissions: parsePermissions([
        `--allow-read=${ro},${root}/missing`,
        `--allow-write=${rw}`,
        "--allow-env=A",
      ]),
      parallelism: 1,
      env: { A: "secret", PATH: "/opt/bin" },
      timeoutMs: undefined,
      tasks: 3,
      maxRetries: 0,
    };
    const settings = {
      image: "kubeface-worker:test",
      network: "host",
      userArgs: ["--user", "1000:1000"],
      ulimits: ["nofile=1024:1024"],
      runArgs: ["--memory=1g"],
    };
    const plan = runPlan(job, { task: 2, attempt: "a1" }, settings);
    assert.equal(plan.name, "kubeface-plan-1-2-a1");
    const volumes = plan.args.flatMap((arg, i) => plan.args[i - 1] === "--volume" ? [arg] : []);
    assert.deepEqual(volumes, [`${storage}:${storage}:rw`, `${rw}:${rw}:rw`, `${ro}:${ro}:ro`]);
    const envs = plan.args.flatMap((arg, i) => plan.args[i - 1] === "--env" ? [arg] : []);
    assert.deepEqual(envs, ["A", "PATH=/opt/bin"], "values by name, except the CLI's own");
    assert.deepEqual(plan.env, { A: "secret" });
    assert.ok(!plan.args.some((arg) => arg.includes("secret")), "no secret on the command line");
    const image = plan.args.indexOf("kubeface-worker:test");
    assert.equal(plan.args[image - 1], "--memory=1g", "extra flags come right before the image");
    assert.deepEqual(plan.args.slice(image + 1, image + 3), ["run", "--cached-only"]);
    assert.ok(plan.args.includes("/app/worker.ts"));

    assert.throws(
      () =>
        runPlan(
          { ...job, permissions: parsePermissions(["--allow-read=/"]) },
          { task: 0, attempt: "b" },
          settings,
        ),
      {
        name: "BackendError",
        message: /^Cannot mount '\/' into a container: grant narrower paths/,
      },
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("a missing container CLI is a clear error before anything runs", async () => {
  const storage = await Deno.makeTempDir({ prefix: "kubeface-test-" });
  try {
    const run = new Client({ storage, backend: "container", container: { cli: "no-such-podman" } })
      .map(fixture("echo.ts"), { ...calm, inputs: [1] });
    const error = await failure(run);
    assert.ok(error instanceof BackendError, `expected a BackendError, got ${error}`);
    assert.equal(
      error.message,
      "Cannot run containers: 'no-such-podman' was not found; install podman or docker, or pass --container-cli",
    );
  } finally {
    await Deno.remove(storage, { recursive: true });
  }
});

Deno.test({
  name: "an image that does not exist is a clear error naming the build",
  ignore: containerUnavailable() !== undefined,
  async fn() {
    const storage = await Deno.makeTempDir({ prefix: "kubeface-test-" });
    try {
      const backend = new ContainerBackend({ image: "kubeface-worker:no-such-tag" });
      const error = await failure(
        new Client({ storage, backend }).map(fixture("echo.ts"), { ...calm, inputs: [1] }),
      );
      assert.ok(error instanceof BackendError, `expected a BackendError, got ${error}`);
      assert.match(
        error.message,
        /^Cannot run containers: the image 'kubeface-worker:no-such-tag' is not in \S+'s image store; build or pull it first, or leave --image out to use kubeface's worker image \(built on first use\)$/,
      );
    } finally {
      await Deno.remove(storage, { recursive: true });
    }
  },
});

Deno.test({
  name: "docker without a daemon is a clear error",
  ignore: new Deno.Command("sh", {
    args: ["-c", "command -v docker && ! docker info"],
    stdout: "null",
    stderr: "null",
  })
    .outputSync().code !== 0,
  async fn() {
    const storage = await Deno.makeTempDir({ prefix: "kubeface-test-" });
    try {
      const run = new Client({ storage, backend: "container", container: { cli: "docker" } })
        .map(fixture("echo.ts"), { ...calm, inputs: [1] });
      const error = await failure(run);
      assert.ok(error instanceof BackendError, `expected a BackendError, got ${error}`);
      assert.match(
        error.message,
        /^Cannot run containers: 'docker image inspect' failed: .*daemon/s,
      );
    } finally {
      await Deno.remove(storage, { recursive: true });
    }
  },
});

/** Whether podman is here and the container backend is among the selected ones. */
function podmanSelected(): boolean {
  const backends = Deno.env.get("KUBEFACE_TEST_BACKENDS");
  if (backends && !backends.split(",").map((b) => b.trim()).includes("container")) return false;
  return /(^|\/)podman$/.test(testCli() ?? "");
}

Deno.test({
  name: "kubeface run --backend container builds a missing worker image itself, saying so",
  ignore: !podmanSelected(),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    // An empty image store of its own (podman reads CONTAINERS_STORAGE_CONF): the image is missing.
    const dir = await Deno.makeTempDir({ prefix: "kubeface-test-store-" });
    try {
      await Deno.writeTextFile(
        `${dir}/storage.conf`,
        `[storage]\ndriver = "vfs"\ngraphroot = "${dir}/root"\nrunroot = "${dir}/run"\n`,
      );
      const r = await kubeface(
        [
          "run",
          "-e",
          "value * 2",
          "-i",
          "[1, 2]",
          "--backend",
          "container",
          "--storage",
          `${dir}/s`,
        ],
        { env: { CONTAINERS_STORAGE_CONF: `${dir}/storage.conf` } },
      );
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(r.stdout.trimEnd().split("\n").map((l) => JSON.parse(l).result), [2, 4]);
      const image = defaultImage();
      assert.match(
        r.stderr,
        new RegExp(
          `^kubeface: building the worker image ${image} with podman \\(once for these kubeface sources; it takes a minute or two\\)…$`,
          "m",
        ),
      );
      assert.match(r.stderr, new RegExp(`^kubeface: built ${image} in [\\d.]+ s$`, "m"));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
