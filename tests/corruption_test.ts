/**
 * Damaged stored objects, of every kind, cut short, with a flipped byte and
 * with other content in their place: each ends in the task computed again
 * (with a warning naming the object) or a clear error naming the object,
 * never in wrong output or a raw crash.
 *
 * @module
 */

import assert from "node:assert/strict";
import { JobLayout } from "../lib/format/layout.ts";
import { openStorage, type Storage } from "../lib/storage/storage.ts";
import { Client, CorruptObjectError, TaskError, WorkerCrashError } from "../mod.ts";
import { kubeface } from "./support/cli.ts";
import { collect, failure, fixture, withMarkers } from "./support/jobs.ts";
import { targetTest } from "./support/targets.ts";

const quiet = { speculationPercent: 0, retryDelayMs: 10, maxRetries: 0 };

/** Ways to damage an object: each returns the new bytes. */
const DAMAGE: Record<string, (bytes: Uint8Array, other: Uint8Array) => Uint8Array> = {
  truncated: (bytes) => bytes.subarray(0, Math.floor(bytes.length * 0.7)),
  "flipped byte": (bytes) => {
    const copy = bytes.slice();
    const at = Math.floor(copy.length * 0.8);
    copy[at] = copy[at]! ^ 0x04;
    return copy;
  },
  replaced: (_bytes, other) => other,
};

async function bytesOf(storage: Storage, key: string): Promise<Uint8Array> {
  return await new Response(await storage.get(key)).bytes();
}

/** The single stored object under a prefix. */
async function only(storage: Storage, prefix: string): Promise<string> {
  const keys = [];
  for await (const { key } of storage.list(prefix)) keys.push(key);
  assert.equal(keys.length, 1, `one object under ${prefix}: ${keys}`);
  return keys[0]!;
}

for (const [how, damage] of Object.entries(DAMAGE)) {
  targetTest(
    `a ${how} result is computed again on a rerun, with a warning that names it`,
    async (target, storage) => {
      await withMarkers(async (dir, access) => {
        const client = new Client(await target.client(storage));
        const options = { ...quiet, ...access, job: "results", inputs: [1, 2, 3] };
        assert.deepEqual(await collect(client.map(fixture("counted.ts"), options)), [1, 4, 9]);
        await using s = await openStorage(storage);
        const layout = new JobLayout("results");
        const key = await only(s, layout.taskResults(1));
        const other = await bytesOf(s, await only(s, layout.taskResults(2)));
        await s.put(key, damage(await bytesOf(s, key), other));
        const warnings: string[] = [];
        const again = client.map(fixture("counted.ts"), {
          ...options,
          onWarning: (message) => warnings.push(message),
        });
        assert.deepEqual(await collect(again), [1, 4, 9], "the right values, not the damaged ones");
        assert.equal(warnings.length, 1, warnings.join("\n"));
        assert.match(warnings[0]!, /^Cannot use the result of task 1 \(.*results\/1\/.*\.ok\): /);
        assert.match(warnings[0]!, /computing task 1 again$/);
        const runs = Deno.readTextFileSync(`${dir}/runs`).trim().split("\n").sort();
        assert.deepEqual(runs, ["1", "2", "2", "3"], "only task 1 ran again");
        assert.deepEqual(
          await collect(client.map(fixture("counted.ts"), options)),
          [1, 4, 9],
          "the next rerun reuses the new result",
        );
      });
    },
    { backends: ["local"] },
  );

  targetTest(
    `a ${how} manifest is a clear error naming it, and --overwrite recovers the key`,
    async (target, storage) => {
      const client = new Client(await target.client(storage));
      const options = { ...quiet, job: "manifest", inputs: [1, 2] };
      await collect(client.map(fixture("echo.ts"), options));
      await collect(client.map(fixture("echo.ts"), { ...quiet, job: "other", inputs: [3] }));
      await using s = await openStorage(storage);
      const { manifest } = new JobLayout("manifest");
      const other = await bytesOf(s, new JobLayout("other").manifest);
      await s.put(manifest, damage(await bytesOf(s, manifest), other));
      const error = await failure(client.map(fixture("echo.ts"), options));
      assert.ok(error instanceof CorruptObjectError, String(error));
      assert.match(
        error.message,
        /^Cannot use the manifest \(.*jobs\/manifest\/manifest\.json\): /,
      );
      assert.match(error.message, /replace the job with --overwrite$/);
      assert.deepEqual(
        await collect(client.map(fixture("echo.ts"), { ...options, overwrite: true })),
        [1, 2],
      );
    },
    { backends: ["local"] },
  );

  targetTest(
    `a ${how} input is a clear error naming it, when read back and when a worker needs it`,
    async (target, storage) => {
      const client = new Client(await target.client(storage));
      const options = { ...quiet, job: "inputs", inputs: [1, 2, 3] };
      await collect(client.map(fixture("echo.ts"), options));
      await using s = await openStorage(storage);
      const layout = new JobLayout("inputs");
      await s.put(
        layout.input(1),
        damage(await bytesOf(s, layout.input(1)), await bytesOf(s, layout.input(2))),
      );
      assert.deepEqual(await collect(client.map(fixture("echo.ts"), options)), [1, 2, 3]);
      const readBack = await collect(client.map(fixture("echo.ts"), options).entries())
        .catch((e) => e);
      assert.ok(readBack instanceof CorruptObjectError, String(readBack));
      assert.match(readBack.message, /^Cannot use the input of task 1 \(.*inputs\/1\): /);
      await s.delete(await only(s, layout.taskResults(1)));
      const rerun = await failure(client.map(fixture("echo.ts"), options));
      assert.ok(rerun instanceof WorkerCrashError, String(rerun));
      assert.match(rerun.message, /Cannot use the input of task 1 \(/);
    },
    { backends: ["local", "warm"] },
  );

  targetTest(
    `a ${how} status page and job summary give a clear error or a warning, not a crash`,
    async (target, storage) => {
      const client = new Client(await target.client(storage));
      await collect(client.map(fixture("echo.ts"), { ...quiet, job: "status", inputs: [1] }));
      await collect(client.map(fixture("echo.ts"), { ...quiet, job: "fine", inputs: [2] }));
      await using s = await openStorage(storage);
      const [status, fine] = [new JobLayout("status"), new JobLayout("fine")];
      await s.put(
        status.statusJson,
        damage(await bytesOf(s, status.statusJson), await bytesOf(s, fine.statusJson)),
      );
      await s.put(
        status.summary,
        damage(await bytesOf(s, status.summary), await bytesOf(s, fine.summary)),
      );
      const shown = await kubeface(["status", "status", "--storage", storage]);
      assert.equal(shown.code, 1, shown.stderr);
      assert.match(
        shown.stderr,
        /^kubeface: Cannot use the status \(.*jobs\/status\/status\.json\)/,
      );
      assert.match(shown.stderr, /rerun job 'status' with its key to write it again/);
      const listed = await kubeface(["jobs", "--all", "--storage", storage]);
      assert.equal(listed.code, 0, listed.stderr);
      assert.match(listed.stdout, /^fine\s+done/m, "the other jobs are listed");
      assert.doesNotMatch(listed.stdout, /^status\s/m);
      assert.match(listed.stderr, /warning: Cannot use the job summary \(.*index\/status\.json\)/);
      const rerun = await collect(client.map(fixture("echo.ts"), { job: "status", inputs: [1] }));
      assert.deepEqual(rerun, [1]);
      const again = await kubeface(["status", "status", "--storage", storage]);
      assert.equal(again.code, 0, "the rerun wrote a good status again");
    },
    { backends: ["local"] },
  );

  targetTest(
    `a ${how} shared value fails the task that loads it with a message naming it`,
    async (target, storage) => {
      const client = new Client(await target.client(storage));
      const table = await client.share(new Float64Array([0.5, 1.5]));
      const other = await client.share(new Float64Array([9, 9, 9]));
      await using s = await openStorage(storage);
      const key = `shared/${table.sha256}`;
      await s.put(key, damage(await bytesOf(s, key), await bytesOf(s, `shared/${other.sha256}`)));
      const error = await failure(
        client.map(fixture("uses_shared.ts"), { ...quiet, inputs: [{ index: 1, table }] }),
      );
      assert.ok(error instanceof TaskError, String(error));
      assert.match(error.message, new RegExp(`Cannot use the shared value ${table.sha256}`));
    },
    { backends: ["local"] },
  );
}

targetTest(
  "a damaged lease holds nothing: the next master runs the job",
  async (target, storage) => {
    await using s = await openStorage(storage);
    await s.put(new JobLayout("leased").lease(0), new TextEncoder().encode('{"format": 1, "ep'));
    const client = new Client(await target.client(storage));
    assert.deepEqual(
      await collect(client.map(fixture("echo.ts"), { job: "leased", inputs: [4] })),
      [
        4,
      ],
    );
  },
  { backends: ["local"] },
);
