/**
 * A client for job files: its options are every map's defaults, job keys
 * from a prefix let a rerun resume each map, and `Client.fromArgs` makes a
 * job file take kubeface's flags (run here as a user runs the examples).
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { readStatus } from "../lib/catalog.ts";
import { Client, openStorage } from "../mod.ts";
import { denoRun, REPO_ROOT } from "./support/cli.ts";
import { collect, fixture } from "./support/jobs.ts";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "kubeface-client-test-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const EXAMPLE_JOB = join(REPO_ROOT, "examples", "job.ts");
const EXAMPLE_JOB_FLAGS = join(REPO_ROOT, "examples", "job_flags.ts");

Deno.test("a client with a job prefix keys its n-th map PREFIX-NNN, and a map's own key wins", () => {
  const client = new Client({ storage: "/unused", jobPrefix: "nightly" });
  const keys = [
    client.map(fixture("echo.ts"), { inputs: [1] }).job,
    client.map(fixture("echo.ts"), { inputs: [1], job: "mine" }).job,
    client.map(fixture("echo.ts"), { inputs: [1] }).job,
  ];
  assert.deepEqual(keys, ["nightly-000", "mine", "nightly-002"]);
  assert.equal(
    new Client({ jobPrefix: "n" }).map(fixture("echo.ts"), { job: undefined }).job,
    "n-000",
    "an undefined option is not given",
  );
});

Deno.test("a client with a job key runs one map, and a bad prefix is refused at once", () => {
  const client = new Client({ storage: "/unused", job: "once" });
  assert.equal(client.map(fixture("echo.ts"), { inputs: [1] }).job, "once");
  assert.throws(() => client.map(fixture("echo.ts"), { inputs: [2] }), {
    name: "TypeError",
    message:
      "Cannot run a second map with the client's job key 'once': a key names one map; give each map its own job, or key them with jobPrefix (--job-prefix)",
  });
  assert.throws(() => new Client({ jobPrefix: "no spaces" }), {
    name: "TypeError",
    message:
      "Cannot use job prefix 'no spaces': use 1 to 96 letters, digits, '.', '_' or '-', starting with a letter or digit",
  });
});

Deno.test("a client's job options are every map's defaults, and a map's own options win", async () => {
  await withDir(async (storage) => {
    const client = new Client({
      storage,
      parallelism: 2,
      itemsPerTask: 2,
      permissions: ["--allow-env"],
      env: { GREETING: "hello" },
    });
    const defaults = client.map(fixture("read_env.ts"), { inputs: ["GREETING", "GREETING"] });
    assert.deepEqual(
      await collect(defaults),
      ["hello", "hello"],
      "the client's env and permissions",
    );
    const own = client.map(fixture("echo.ts"), { inputs: [1, 2, 3], parallelism: 3 });
    assert.deepEqual(await collect(own), [1, 2, 3]);
    await using s = await openStorage(storage);
    const first = await readStatus(s, defaults.job);
    assert.deepEqual([first.parallelism, first.itemsPerTask], [2, 2]);
    const second = await readStatus(s, own.job);
    assert.deepEqual([second.parallelism, second.itemsPerTask], [3, 2]);
  });
});

/** Every result object of a job, to tell whether a rerun computed anything. */
async function resultObjects(storage: string, job: string): Promise<string[]> {
  await using s = await openStorage(storage);
  const keys: string[] = [];
  for await (const { key } of s.list(`jobs/${job}/results/`)) keys.push(key);
  return keys.sort();
}

Deno.test("a job file takes kubeface's flags, and with --job-prefix a rerun resumes each map", async () => {
  await withDir(async (dir) => {
    const storage = join(dir, "runs");
    const args = ["--storage", storage, "--job-prefix", "demo", "--parallelism", "3"];
    const first = await denoRun(EXAMPLE_JOB, args, { cwd: dir });
    assert.equal(first.code, 0, first.stderr);
    assert.equal(
      first.stdout,
      "job demo-000: the sum of the first 20 squares is 2470\n" +
        "job demo-001: hello-world a-parallel-map-on-kubernetes kubeface-runs-tasks\n",
    );
    const before = [
      await resultObjects(storage, "demo-000"),
      await resultObjects(storage, "demo-001"),
    ];
    assert.equal(before[0]!.length, 20);
    await using s = await openStorage(storage);
    assert.equal((await readStatus(s, "demo-000")).parallelism, 3);

    const again = await denoRun(EXAMPLE_JOB, args, { cwd: dir });
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stdout, first.stdout);
    const after = [
      await resultObjects(storage, "demo-000"),
      await resultObjects(storage, "demo-001"),
    ];
    assert.deepEqual(after, before, "the rerun reused every result and computed nothing");
  });
});

Deno.test("--help in a job file lists kubeface's flags with their defaults", async () => {
  const r = await denoRun(EXAMPLE_JOB, ["--help"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^Usage: deno run -A job\.ts \[options\]\n/);
  assert.match(r.stdout, /--storage URL .*\[default: ~\/\.local\/share\/kubeface\]/);
  assert.match(r.stdout, /--parallelism N +most tasks running at once \[default: 4\]/);
  assert.match(r.stdout, /--job-prefix PREFIX/);
  assert.match(r.stdout, /--cpu QTY .*\[default: 1\]/);
  assert.match(r.stdout, /--memory QTY .*\[default: 1Gi\]/);
  assert.equal(r.stderr, "");
});

Deno.test("an unknown flag, a stray argument or a bad value in a job file exits 2 saying so", async () => {
  for (
    const [args, message] of [
      [["--bogus"], "Unknown option '--bogus'"],
      [["stray"], "Unexpected argument 'stray'. This command does not take positional arguments"],
      [["--parallelism", "0"], "--parallelism must be a whole number from 1 to 100000, not '0'"],
    ] as const
  ) {
    const r = await denoRun(EXAMPLE_JOB, [...args]);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr, `job.ts: ${message}\nRun it with --help to list kubeface's options.\n`);
    assert.equal(r.stdout, "", "nothing ran");
  }
});

Deno.test("a job file with flags of its own takes them next to kubeface's", async () => {
  await withDir(async (dir) => {
    const r = await denoRun(EXAMPLE_JOB_FLAGS, ["--count", "5", "--storage", dir, "--job", "five"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "job five: the sum of the first 5 squares is 30\n");
    const unknown = await denoRun(EXAMPLE_JOB_FLAGS, ["--count", "5", "--bogus"]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /^job_flags\.ts: Unknown option '--bogus'/);
    const bad = await denoRun(EXAMPLE_JOB_FLAGS, ["--max-retries", "lots"]);
    assert.equal(bad.code, 2);
    assert.match(
      bad.stderr,
      /^job_flags\.ts: --max-retries must be a whole number 0 or more, not 'lots'/,
    );
    const help = await denoRun(EXAMPLE_JOB_FLAGS, ["--help"]);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^Usage: deno run -A examples\/job_flags\.ts \[--count N\]/);
    assert.match(help.stdout, /--count N +how many squares to add up \[default: 10\]/);
    assert.match(help.stdout, /--backend NAME .*\[default: local\]/);
  });
});
