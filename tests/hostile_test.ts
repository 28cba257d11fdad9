/**
 * Careless and hostile use: endless and stalled inputs, inputs that throw,
 * a task that ends its own thread or reaches for another job's shared
 * values, a status server asked under another name, and flags that make no
 * sense. Each ends in a clear error or the right output, never a hang, a
 * raw crash or another job's data.
 *
 * @module
 */

import assert from "node:assert/strict";
import { jobSpec } from "../lib/backends/kubernetes/job_spec.ts";
import { JobLayout } from "../lib/format/layout.ts";
import { parsePermissions } from "../lib/permissions.ts";
import { serveStatus } from "../lib/status/serve.ts";
import { openStorage } from "../lib/storage/storage.ts";
import { Client, TaskModuleError, WorkerCrashError } from "../mod.ts";
import { kubeface, spawnKubeface } from "./support/cli.ts";
import { collect, failure, fixture, storedKeys } from "./support/jobs.ts";
import { targetTest } from "./support/targets.ts";

const quiet = { speculationPercent: 0, retryDelayMs: 10 };

targetTest(
  "endless inputs stop at maxInputs with an error that names the limit, and nothing stays",
  async (target, storage) => {
    const client = new Client(await target.client(storage));
    const error = await failure(client.map(fixture("endless.ts"), { ...quiet, maxInputs: 500 }));
    assert.ok(error instanceof RangeError, String(error));
    assert.match(
      error.message,
      /^Cannot run more than 500 inputs: .* raise the limit with --max-inputs$/,
    );
    assert.deepEqual(await storedKeys(storage), []);
  },
  { backends: ["local"] },
);

targetTest(
  "inputs that throw are the user's error: the index reached and the user's own frames",
  async (target, storage) => {
    const client = new Client(await target.client(storage));
    const error = await failure(client.map(fixture("bad_inputs.ts"), quiet));
    assert.ok(error instanceof TaskModuleError, String(error));
    assert.equal(error.stage, "inputs");
    assert.equal(error.index, 3);
    assert.match(
      error.message,
      /^Cannot read input 3 of task module '.*bad_inputs\.ts': its inputs threw RangeError: sample 3 is unreadable$/,
    );
    assert.deepEqual(await storedKeys(storage), [], "the partial upload is removed");
    const cli = await kubeface(["map", "-m", fixture("bad_inputs.ts"), "--storage", storage]);
    assert.equal(cli.code, 1);
    assert.match(
      cli.stderr,
      /kubeface: Cannot read input 3 of task module .*: its inputs threw RangeError/,
    );
    assert.match(cli.stderr, /at readSample \(.*bad_inputs\.ts:\d+:\d+\)/, "the user's frame");
    assert.doesNotMatch(cli.stderr, /\/lib\/|ext:|unexpected error/, "no kubeface frames");
  },
  { backends: ["local"] },
);

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  targetTest(
    `${signal} during an endless upload stops within a second, the job listed as interrupted`,
    async (_target, storage) => {
      const child = spawnKubeface([
        "map",
        "-m",
        fixture("slow_endless.ts"),
        "--storage",
        storage,
        "--job",
        "stalled",
      ]);
      const stderr = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
      let said = "";
      while (!/kubeface: status .*status\.html/.test(said)) {
        const { value, done } = await stderr.read();
        if (done) break;
        said += value;
      }
      assert.match(said, /^kubeface: job stalled$/m, "the key comes before the upload ends");
      const listed = await kubeface(["jobs", "--storage", storage]);
      assert.match(listed.stdout, /^stalled\s+preparing/m, "listed while preparing");
      const sent = performance.now();
      child.kill(signal);
      const { code } = await child.status;
      const took = performance.now() - sent;
      await stderr.cancel();
      await child.stdout.cancel();
      assert.equal(code, 130);
      assert.ok(took < 1000, `stopped in ${took.toFixed(0)} ms`);
      const after = await kubeface(["jobs", "--all", "--storage", storage]);
      assert.match(after.stdout, /^stalled\s+interrupted/m);
    },
    { backends: ["local"], storages: ["local"] },
  );
}

targetTest(
  "a task that calls close() crashes its attempt in plain words, and its worker goes on",
  async (target, storage) => {
    const client = new Client(await target.client(storage));
    const run = client.map<number, number>(fixture("closes.ts"), {
      ...quiet,
      maxRetries: 1,
      failFast: false,
    });
    const values: number[] = [];
    const error = await (async () => {
      for await (const value of run) values.push(value);
    })().catch((e) => e);
    assert.deepEqual(values, [0], "the task before it");
    assert.ok(error instanceof WorkerCrashError, String(error));
    assert.match(
      error.message,
      /^Task 1 \(input 1\) crashed 2 time\(s\) without a result: .*the task called close\(\), which ends the thread it runs in/,
    );
    assert.equal(run.progress()?.done, 2, "the other tasks finished");
  },
  { backends: ["local", "warm"] },
);

targetTest(
  "a task cannot get shared values its inputs do not refer to, from any storage",
  async (target, storage) => {
    const client = new Client(await target.client(storage));
    const secret = await client.share("another job's secret");
    const result = await collect(client.map(fixture("steal_shared.ts"), {
      ...quiet,
      inputs: [{ sha256: secret.sha256, storage: "file:///somewhere/else" }],
    }));
    assert.equal(result.length, 1);
    assert.match(String(result[0]), /^refused: Cannot load shared value '[0-9a-f]{64}'/);
  },
  { backends: ["local", "warm"] },
);

Deno.test("the status server answers only to its own name, against DNS rebinding", async () => {
  const root = await Deno.makeTempDir();
  try {
    await using storage = await openStorage(root);
    const layout = new JobLayout("served");
    await collect(new Client({ storage: root }).map(fixture("echo.ts"), {
      job: "served",
      inputs: [1],
    }));
    const stop = new AbortController();
    await using server = await serveStatus(storage, layout.key, { signal: stop.signal });
    const { port } = new URL(server.url);
    const ask = async (host: string) => {
      const connection = await Deno.connect({ hostname: "127.0.0.1", port: Number(port) });
      const request = `GET /status.json HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`;
      await connection.write(new TextEncoder().encode(request));
      const reply = await new Response(connection.readable).text();
      return Number(reply.split(" ")[1]);
    };
    assert.equal(await ask(`127.0.0.1:${port}`), 200);
    assert.equal(await ask(`localhost:${port}`), 200);
    assert.equal(await ask(`attacker.example:${port}`), 421);
    assert.equal(await ask(`127.0.0.1:${Number(port) + 1}`), 421);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("flags that make no sense are usage errors that name the flag", async () => {
  const cases: [string[], RegExp][] = [
    [["--timeout", "0"], /--timeout must be longer than 0, not '0'; leave --timeout out/],
    [["--status-interval", "0"], /--status-interval must be at least 100ms, not '0'/],
    [["--parallelism", "1e20"], /--parallelism must be a whole number from 1 to 100000/],
    [["--parallelism", "100000000000000000000"], /--parallelism must be a whole number from 1/],
    [["--parallelism", "-5"], /--parallelism must be a whole number from 1 to 100000, not '-5'/],
    [["--max-retries", "-1"], /--max-retries must be a whole number 0 or more, not '-1'/],
    [["--max-inputs", "0"], /--max-inputs must be a whole number 1 or more, not '0'/],
  ];
  for (const [flags, message] of cases) {
    const result = await kubeface(["map", "-m", fixture("echo.ts"), ...flags]);
    assert.equal(result.code, 2, `${flags.join(" ")}: ${result.stderr}`);
    assert.match(result.stderr, message);
  }
});

Deno.test("an input JSON cannot hold is a clear error that names it, after the rows before it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const module = `${dir}/circular.ts`;
    await Deno.writeTextFile(
      module,
      `const loop: Record<string, unknown> = { n: 2 }; loop.self = loop;
export const inputs = [{ n: 1 }, loop];
export function task(x: { n: number }): number { return x.n; }\n`,
    );
    const result = await kubeface(["map", "-m", module, "--storage", `${dir}/store`]);
    assert.equal(result.code, 1);
    assert.equal(result.stdout, '{"input":{"n":1},"result":1}\n');
    assert.match(
      result.stderr,
      /Cannot write input 1 as jsonl: it refers to itself at \$\.self \(a circular structure/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("pods get a bounded scratch volume, no service links, and a limited worker process", async () => {
  const root = await Deno.makeTempDir();
  try {
    await using storage = await openStorage(root);
    const spec = (scratchSize?: string) =>
      jobSpec({
        job: {
          key: "pods",
          storage,
          layout: new JobLayout("pods"),
          permissions: parsePermissions(["--allow-net=example.com"]),
          parallelism: 1,
          env: {},
          timeoutMs: undefined,
          tasks: 1,
          maxRetries: 0,
        },
        options: scratchSize ? { scratchSize } : {},
        namespace: "default",
        name: "kf-pods",
        completions: 1,
        runtime: { worker: { key: "w", sha256: "1" }, thread: { key: "t", sha256: "2" } },
      }).spec!.template.spec!;
    const pod = spec();
    assert.equal(pod.enableServiceLinks, false);
    assert.equal(pod.volumes?.[0]?.emptyDir?.sizeLimit, "10Gi");
    assert.equal(spec("2Gi").volumes?.[0]?.emptyDir?.sizeLimit, "2Gi");
    const command = pod.containers[0]!.command!;
    assert.deepEqual(
      command.slice(0, 2),
      ["deno", "run"],
      "not deno eval, which has every permission",
    );
    assert.ok(!command.some((arg) => arg === "--allow-all" || arg === "-A"));
    assert.ok(command.includes("--allow-net=example.com"), "what the task was granted");
    assert.ok(command.some((arg) => arg.startsWith("--allow-write=/tmp/kubeface")));
    assert.match(command.at(-1)!, /^data:text\/javascript;base64,/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
