/**
 * The core contract of map(), on every storage and backend.
 *
 * @module
 */

import assert from "node:assert/strict";
import { Client, map, TaskError, WorkerCrashError } from "../mod.ts";
import { openStorage } from "../lib/storage/storage.ts";
import { targetTest } from "./support/targets.ts";
import {
  collect,
  failure,
  fixture,
  maxOverlap,
  resultHeaders,
  storedKeys,
  waitFor,
  withMarkers,
} from "./support/jobs.ts";

const quiet = { speculationPercent: 0, retryDelayMs: 10 };

targetTest("map() yields 2/x over 1..9 in input order", async (target, storage) => {
  const results = await collect(
    new Client(await target.client(storage)).map<number, number>(fixture("half.ts"), quiet),
  );
  assert.deepEqual(results, [1, 2, 3, 4, 5, 6, 7, 8, 9].map((x) => 2 / x));
}, { warm: true });

targetTest(
  "each attempt's log holds all it printed, to the line before it returned, and nothing of another task",
  async (target, storage) => {
    const job = "loud-1";
    const run = new Client(await target.client(storage)).map<number, number>(
      fixture("loud_end.ts"),
      { ...quiet, job, parallelism: 2 },
    );
    assert.deepEqual(await collect(run), [0, 1, 2, 3, 4, 5, 6, 7]);
    await using s = await openStorage(storage);
    for (let task = 0; task < 8; task++) {
      const logs = await storedKeys(storage, `jobs/${job}/logs/${task}/`);
      assert.equal(logs.length, 1, `task ${task} has one log: ${logs}`);
      const text = await new Response(await s.get(logs[0]!)).text();
      assert.equal(text.match(/^task \d+ line \d+ x+$/gm)?.length, 500, `task ${task}'s lines`);
      assert.match(text, new RegExp(`^task ${task} out$`, "m"));
      assert.match(text, new RegExp(`^task ${task} last$`, "m"));
      assert.deepEqual(
        [...new Set(text.match(/^task \d+/gm))],
        [`task ${task}`],
        `task ${task}'s log holds only its own output`,
      );
    }
  },
  { backends: ["local", "warm"] },
);

targetTest(
  "map() yields async results in input order though they finish out of order",
  async (target, storage) => {
    await withMarkers(async (dir, markers) => {
      const run = new Client(await target.client(storage)).map<number, number>(
        fixture("reverse_finish.ts"),
        { ...quiet, ...markers, parallelism: 4 },
      );
      assert.deepEqual(await collect(run), [0, 3, 6, 9]);
      // Each task leaves its marker once it has seen the next task's: they finished 3, 2, 1, 0.
      // (Not the result headers' end times: a worker paused between its marker and its clock
      // reading can record a later end than the task that waited for it.)
      const left = (x: number) => Deno.statSync(`${dir}/${x}`).mtime!.getTime();
      assert.ok(left(0) >= left(1) && left(1) >= left(2) && left(2) >= left(3));
    });
  },
);

targetTest(
  "map() takes inputs from a generator, an async generator or a function",
  async (target, storage) => {
    const client = new Client(await target.client(storage));
    function* generator() {
      yield 10;
      yield 20;
    }
    async function* asyncGenerator() {
      yield 30;
      yield 40;
    }
    assert.deepEqual(
      await collect(client.map(fixture("echo.ts"), { ...quiet, inputs: generator() })),
      [10, 20],
    );
    assert.deepEqual(
      await collect(client.map(fixture("echo.ts"), { ...quiet, inputs: asyncGenerator() })),
      [30, 40],
    );
    assert.deepEqual(
      await collect(client.map(fixture("echo.ts"), { ...quiet, inputs: () => new Set([50, 60]) })),
      [50, 60],
    );
  },
);

targetTest(
  "itemsPerTask batches inputs into fewer tasks and keeps one result per input",
  async (target, storage) => {
    const run = new Client(await target.client(storage)).map<number, number>(fixture("half.ts"), {
      ...quiet,
      itemsPerTask: 4,
    });
    const entries = [];
    for await (const entry of run.entries()) entries.push(entry);
    assert.deepEqual(entries.map((e) => e.index), [0, 1, 2, 3, 4, 5, 6, 7, 8]);
    assert.deepEqual(entries.map((e) => e.input), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.deepEqual(entries.map((e) => e.value), [1, 2, 3, 4, 5, 6, 7, 8, 9].map((x) => 2 / x));
    const headers = await resultHeaders(storage, run.job);
    assert.deepEqual(headers.map((h) => h.task).sort(), [0, 1, 2], "9 inputs in tasks of 4");
  },
);

targetTest(
  "typed arrays, Map, Set, Date, BigInt, nested objects and errors round-trip",
  async (target, storage) => {
    const inputs: unknown[] = [
      new Uint8Array([1, 2, 255]),
      new Float64Array([0.5, -1e300]),
      new BigInt64Array([-(2n ** 63n)]),
      new Map<unknown, unknown>([["a", 1], [2, new Set(["x"])]]),
      new Date(Date.UTC(2026, 10, 28)),
      2n ** 100n,
      { nested: [{ deep: [null, undefined, -0, NaN] }] },
      new RangeError("kept"),
    ];
    const client = new Client(await target.client(storage));
    const echoed = await collect(client.map(fixture("echo.ts"), { ...quiet, inputs }));
    assert.deepEqual(echoed.slice(0, 7), inputs.slice(0, 7));
    const error = echoed[7];
    assert.ok(error instanceof Error);
    assert.equal(error.name, "RangeError");
    assert.equal(error.message, "kept");
    const seen = await collect(client.map(fixture("describe.ts"), { ...quiet, inputs }));
    assert.deepEqual(seen.slice(0, 4), [
      "[object Uint8Array]:3",
      "[object Float64Array]",
      "[object BigInt64Array]",
      "[object Map]",
    ]);
  },
);

targetTest(
  "a Uint8Array travels as raw bytes, without serialization overhead",
  async (target, storage) => {
    const input = new Uint8Array(1_000_000).fill(7);
    const run = new Client(await target.client(storage)).map(fixture("echo.ts"), {
      ...quiet,
      inputs: [input],
    });
    assert.deepEqual(await collect(run), [input]);
    const [header] = await resultHeaders(storage, run.job);
    assert.equal(header!.encoding, "bytes");
    assert.equal(header!.size, 1_000_000);
  },
);

targetTest(
  "a task that throws fails map() at once with the remote error and its index",
  async (target, storage) => {
    const run = new Client(await target.client(storage)).map(
      fixture("throws_while_others_wait.ts"),
      {
        ...quiet,
        parallelism: 6,
      },
    );
    const error = await failure(run);
    assert.ok(error instanceof TaskError, `expected a TaskError, got ${error}`);
    assert.equal(error.task, 3);
    assert.equal(error.input, 3);
    assert.equal(error.remoteName, "TypeError");
    assert.equal(error.remoteMessage, "cannot handle 3");
    assert.match(
      error.remoteStack,
      /throws_while_others_wait\.ts:\d+:\d+/,
      "the stack names the user's file",
    );
    assert.match(error.message, /Task 3 \(input 3\) threw TypeError: cannot handle 3/);
    const done = (await resultHeaders(storage, run.job)).filter((h) => h.status === "ok");
    assert.equal(done.length, 0, `fail fast: ${done.length} other tasks had finished`);
  },
  { warm: true },
);

targetTest(
  "with failFast off, the other tasks finish before the error is thrown",
  async (target, storage) => {
    const run = new Client(await target.client(storage)).map<number, number>(fixture("throws.ts"), {
      ...quiet,
      parallelism: 2,
      failFast: false,
    });
    const yielded: number[] = [];
    let caught: unknown;
    try {
      for await (const value of run) yielded.push(value);
    } catch (error) {
      caught = error;
    }
    assert.ok(caught instanceof TaskError);
    assert.equal(caught.task, 3);
    assert.deepEqual(yielded, [0, 1, 2], "results before the failed task are yielded");
    const ok = (await resultHeaders(storage, run.job)).filter((h) => h.status === "ok");
    assert.deepEqual(ok.map((h) => h.task).sort(), [0, 1, 2, 4, 5]);
  },
);

targetTest("a task's own error is not retried", async (target, storage) => {
  const run = new Client(await target.client(storage)).map(fixture("throws.ts"), {
    ...quiet,
    maxRetries: 3,
    failFast: false,
  });
  await failure(run);
  const attempts = (await resultHeaders(storage, run.job)).filter((h) => h.task === 3);
  assert.equal(attempts.length, 1);
  assert.equal(attempts[0]!.status, "error");
}, { warm: true });

targetTest(
  "a worker killed mid-task is reported as a crash, not as a task error",
  async (target, storage) => {
    await withMarkers(async (markers, access) => {
      const run = new Client(await target.client(storage)).map(fixture("hang_on_marker.ts"), {
        ...quiet,
        ...access,
        maxRetries: 0,
      });
      const result = failure(run);
      const pid = await waitFor(
        "the task to write its pid",
        () => Deno.readTextFile(`${markers}/pid`).then(Number, () => undefined),
      );
      Deno.kill(pid, "SIGKILL");
      const error = await result;
      assert.ok(error instanceof WorkerCrashError, `expected a WorkerCrashError, got ${error}`);
      assert.equal(error.task, 1);
      assert.equal(error.kind, "crash");
      assert.match(
        error.message,
        /Task 1 \(input 1\) crashed 1 time\(s\) without a result: .*SIGKILL/,
      );
    });
  },
  { backends: ["local"] },
);

targetTest("tasks get the permissions granted, and only those", async (target, storage) => {
  const client = new Client(await target.client(storage));
  const env = { KUBEFACE_TEST_SECRET: "s3cret" };
  const denied = await failure(
    client.map(fixture("read_env.ts"), { ...quiet, env, inputs: ["KUBEFACE_TEST_SECRET"] }),
  );
  assert.ok(denied instanceof TaskError);
  assert.equal(denied.remoteName, "NotCapable");
  const allowed = await collect(client.map(fixture("read_env.ts"), {
    ...quiet,
    env,
    inputs: ["KUBEFACE_TEST_SECRET"],
    permissions: ["--allow-env=KUBEFACE_TEST_SECRET"],
  }));
  assert.deepEqual(allowed, ["s3cret"]);
});

targetTest(
  "at most `parallelism` tasks run at once, as the workers' own clocks show",
  async (target, storage) => {
    const run = new Client(await target.client(storage)).map(fixture("sleepy.ts"), {
      ...quiet,
      parallelism: 3,
    });
    assert.equal((await collect(run)).length, 8);
    const intervals = (await resultHeaders(storage, run.job)).map((h) => ({
      start: Date.parse(h.startedAt),
      end: Date.parse(h.endedAt),
    }));
    const overlap = maxOverlap(intervals);
    assert.ok(overlap <= 3, `${overlap} tasks ran at once with parallelism 3`);
    assert.ok(overlap >= 2, `tasks did not run in parallel (max ${overlap} at once)`);
  },
  { warm: true },
);

targetTest(
  "a module without `task` is rejected by name before anything is stored",
  async (target, storage) => {
    const error = await failure(
      new Client(await target.client(storage)).map(fixture("no_task.ts")),
    );
    assert.ok(error instanceof TypeError);
    assert.match(error.message, /no_task\.ts' does not export 'task'; add 'export function task/);
    assert.deepEqual(await storedKeys(storage), []);
  },
);

targetTest(
  "a module without `inputs` is rejected by name unless inputs are given",
  async (target, storage) => {
    const client = new Client(await target.client(storage));
    const error = await failure(client.map(fixture("no_inputs.ts")));
    assert.ok(error instanceof TypeError);
    assert.match(error.message, /does not export 'inputs'/);
    assert.deepEqual(await storedKeys(storage), []);
    assert.deepEqual(
      await collect(client.map(fixture("no_inputs.ts"), { ...quiet, inputs: [7] })),
      [7],
    );
  },
);

targetTest(
  "an input that cannot be serialized is rejected by index and nothing stays stored",
  async (target, storage) => {
    const client = new Client(await target.client(storage));
    const error = await failure(
      client.map(fixture("echo.ts"), { ...quiet, inputs: [1, 2, () => 3, 4] }),
    );
    assert.ok(error instanceof TypeError);
    assert.match(error.message, /Cannot serialize input 2: /);
    assert.deepEqual(await storedKeys(storage), []);
    const batched = await failure(
      client.map(fixture("echo.ts"), { ...quiet, itemsPerTask: 3, inputs: [1, 2, 3, Symbol("x")] }),
    );
    assert.match((batched as Error).message, /Cannot serialize input 3: /);
  },
);

Deno.test("map() rejects bad options before it starts", () => {
  assert.throws(() => map("x.ts", { parallelism: 0 }), {
    name: "RangeError",
    message: "Cannot use parallelism 0: it must be a whole number from 1 to 100000",
  });
  assert.throws(() => map("x.ts", { job: "bad key!" }), {
    name: "TypeError",
    message: /Cannot use job key 'bad key!'/,
  });
  assert.throws(() => map("x.ts", { permissions: ["--allow-everything"] }), {
    name: "TypeError",
    message: /Cannot grant permission '--allow-everything'/,
  });
});

targetTest(
  "a 100 MB input and result pass without the master holding them more than once",
  async (target, storage) => {
    const size = 100 * 1024 * 1024;
    const input = new Uint8Array(size).fill(1);
    const client = new Client(await target.client(storage));
    // Warm up first, so one-off costs (loading the storage and backend clients) are not counted.
    await collect(client.map(fixture("bytes.ts"), { ...quiet, inputs: [new Uint8Array(10)] }));
    // Live memory: heap plus array buffers, after a collection when the test
    // runs with --v8-flags=--expose-gc (as `deno task test` does); otherwise
    // garbage counts too and the bound is looser.
    const gc = (globalThis as { gc?: () => void }).gc;
    const live = () => {
      gc?.();
      const m = Deno.memoryUsage();
      return m.heapUsed + m.external;
    };
    const before = live();
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, live())), gc ? 100 : 5);
    let length = 0;
    try {
      for await (
        const value of client.map<Uint8Array, Uint8Array>(fixture("bytes.ts"), {
          ...quiet,
          inputs: [input],
        })
      ) {
        peak = Math.max(peak, live());
        length = value.length;
        assert.equal(value[size - 1], size % 251);
      }
    } finally {
      clearInterval(sampler);
    }
    assert.equal(length, size);
    const growth = peak - before;
    // Holding the result once costs `size` (the input is already counted in
    // `before`), plus the chunks in flight.
    const bound = gc ? 1.5 : 3; // without --expose-gc, uncollected garbage counts too
    assert.ok(
      growth < bound * size,
      `the master's live memory grew by ${(growth / 2 ** 20).toFixed(0)} MiB (bound ${
        bound * 100
      } MiB)`,
    );
  },
);

targetTest(
  "a task that calls Deno.exit() fails as a task error, and its worker goes on",
  async (target, storage) => {
    const run = new Client(await target.client(storage)).map<number, number>(fixture("exits.ts"), {
      ...quiet,
      failFast: false,
    });
    const error = await failure(run);
    assert.ok(error instanceof TaskError, `expected a TaskError, got ${error}`);
    assert.equal(error.task, 1);
    assert.match(
      error.remoteMessage,
      /the task called Deno\.exit\(7\); a task must return a result or throw/,
    );
    const ok = (await resultHeaders(storage, run.job)).filter((h) => h.status === "ok");
    assert.deepEqual(ok.map((h) => h.task).sort(), [0, 2]);
  },
  { warm: true },
);

Deno.test("map() takes a URL or a path, and a relative path not found says to use new URL(…, import.meta.url)", async () => {
  const storage = await Deno.makeTempDir({ prefix: "kubeface-test-" });
  try {
    const url = new URL("./fixtures/echo.ts", import.meta.url);
    assert.deepEqual(await collect(map(url, { storage, inputs: [1] })), [1]);
    assert.deepEqual(await collect(map(url.pathname, { storage, inputs: [2] })), [2]);
    assert.deepEqual(await collect(map(url.href, { storage, inputs: [3] })), [3]);
    const before = await storedKeys(storage);
    const error = await failure(map("./not_here.ts", { storage, inputs: [1] }));
    assert.ok(error instanceof TypeError, `expected a TypeError, got ${error}`);
    assert.equal(
      error.message,
      `Cannot find task module './not_here.ts': there is no file ${Deno.cwd()}/not_here.ts; a relative path is resolved against the working directory (${Deno.cwd()}), not against the job file, so name a module next to the job file with new URL("./not_here.ts", import.meta.url)`,
    );
    const absolute = await failure(map("/no/such/module.ts", { storage, inputs: [1] }));
    assert.equal(
      (absolute as Error).message,
      "Cannot find task module '/no/such/module.ts': there is no such file",
    );
    assert.deepEqual(await storedKeys(storage), before, "nothing was stored");
  } finally {
    await Deno.remove(storage, { recursive: true });
  }
});
