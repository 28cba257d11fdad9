/**
 * One master per job: two masters with one key never both run it, a second
 * one says who runs it and what to do, `--attach` follows the running one,
 * `--overwrite` takes it over, and a dead master's job is taken at once.
 *
 * @module
 */

import assert from "node:assert/strict";
import { writeJson } from "../lib/format/json.ts";
import { JobLayout } from "../lib/format/layout.ts";
import { hostName } from "../lib/host.ts";
import { acquireLease, LEASE_TTL_MS, type LeaseRecord } from "../lib/master/lease.ts";
import { openStorage } from "../lib/storage/storage.ts";
import { Client, JobBusyError } from "../mod.ts";
import { kubeface, spawnKubeface } from "./support/cli.ts";
import { collect, failure, fixture, waitFor, withMarkers } from "./support/jobs.ts";
import { targetTest } from "./support/targets.ts";

const quiet = { speculationPercent: 0, retryDelayMs: 10 };

/** A lease record as another master would have left it. */
function lease(fields: Partial<LeaseRecord>): LeaseRecord {
  const now = new Date().toISOString();
  return {
    format: 1,
    epoch: 0,
    host: "another-host",
    pid: 4242,
    since: now,
    renewedAt: now,
    released: false,
    ...fields,
  };
}

targetTest(
  "of two masters started together with one key, exactly one runs the job",
  async (target, storage) => {
    const client = new Client(await target.client(storage));
    const options = { ...quiet, job: "race" };
    const outcomes = await Promise.allSettled([
      collect(client.map<number, string>(fixture("tagged.ts"), options)),
      collect(client.map<number, string>(fixture("tagged_b.ts"), options)),
    ]);
    const won = outcomes.filter((o) => o.status === "fulfilled");
    const lost = outcomes.filter((o) => o.status === "rejected");
    assert.equal(won.length, 1, "one master ran the job");
    assert.equal(lost.length, 1, "the other refused");
    const results = (won[0] as PromiseFulfilledResult<string[]>).value;
    const letter = results[0]![0]!;
    assert.deepEqual(results, Array.from({ length: 8 }, (_, i) => `${letter}${i}`), "no mix");
    const error = (lost[0] as PromiseRejectedResult).reason;
    assert.ok(error instanceof JobBusyError, String(error));
    assert.match(error.message, /another master is running it \(host .*, pid \d+, since /);
    assert.match(error.message, /wait for it to finish, follow its results with --attach/);
  },
  { backends: ["local"] },
);

targetTest(
  "a second kubeface map with the same --job refuses and names the running master",
  async (target, storage) => {
    const args = ["--storage", storage, "--job", "race", "--backend", "local"];
    const [a, b] = await Promise.all([
      kubeface(["map", "--module", fixture("tagged.ts"), ...args]),
      kubeface(["map", "--module", fixture("tagged_b.ts"), ...args]),
    ]);
    const [winner, loser] = a.code === 0 ? [a, b] : [b, a];
    assert.equal(winner.code, 0, winner.stderr);
    assert.equal(loser.code, 1, loser.stderr);
    assert.match(loser.stderr, /Cannot run job 'race': another master is running it/);
    assert.equal(loser.stdout, "", "the refused master prints no results");
    const letters = new Set(winner.stdout.trim().split("\n").map((l) => JSON.parse(l).result[0]));
    assert.equal(letters.size, 1, `results of one module only: ${[...letters]}`);
    assert.ok(target);
  },
  { backends: ["local"] },
);

targetTest(
  "--attach follows the running master's results without running anything",
  async (target, storage) => {
    await withMarkers(async (dir, access) => {
      const args = [
        "--storage",
        storage,
        "--job",
        "followed",
        "--backend",
        "local",
        `--allow-env=MARKER_DIR`,
        `--allow-write=${dir}`,
        `--allow-read=${dir}`,
        "--env",
        `MARKER_DIR=${dir}`,
      ];
      const runner = spawnKubeface([
        "map",
        "--module",
        fixture("counted_slow.ts"),
        "--parallelism",
        "2",
        ...args,
      ]);
      // Attach once the job is prepared (the manifest is there).
      await waitFor("the job's manifest", async () => {
        await using s = await openStorage(storage);
        return (await s.stat(new JobLayout("followed").manifest)) ? true : undefined;
      });
      const follower = await kubeface([
        "map",
        "--module",
        fixture("counted_slow.ts"),
        "--attach",
        ...args,
      ]);
      const ran = await runner.output();
      assert.equal(ran.code, 0, new TextDecoder().decode(ran.stderr));
      assert.equal(follower.code, 0, follower.stderr);
      assert.equal(follower.stdout, new TextDecoder().decode(ran.stdout), "the same results");
      const runs = Deno.readTextFileSync(`${dir}/runs`).trim().split("\n");
      assert.equal(runs.length, 6, "each task ran once, by the running master only");
      assert.ok(access && target);
    });
  },
  { backends: ["local"] },
);

targetTest(
  "--overwrite takes a job over from a running master, which then stops",
  async (target, storage) => {
    const client = new Client(await target.client(storage));
    const first = client.map(fixture("forever.ts"), { ...quiet, job: "taken", inputs: [1] });
    const iterator = first[Symbol.asyncIterator]();
    const ending = iterator.next().then(() => undefined, (error) => error);
    await waitFor("the first master's running job", async () => {
      await using s = await openStorage(storage);
      return (await s.stat(new JobLayout("taken").manifest)) ? true : undefined;
    });
    const second = await collect(
      client.map(fixture("echo.ts"), { ...quiet, job: "taken", inputs: [5], overwrite: true }),
    );
    assert.deepEqual(second, [5]);
    const error = await ending;
    assert.ok(error instanceof JobBusyError, `the first master stops: ${error}`);
  },
  { backends: ["local"] },
);

targetTest(
  "a lease left by a dead master is taken at once; a live one elsewhere only once stale",
  async (target, storage) => {
    const layout = new JobLayout("orphan");
    await using s = await openStorage(storage);
    const gone = new Deno.Command("true").spawn();
    const pid = gone.pid;
    await gone.status;
    await writeJson(s, layout.lease(0), lease({ host: hostName(), pid }));
    const client = new Client(await target.client(storage));
    assert.deepEqual(
      await collect(client.map(fixture("echo.ts"), { job: "orphan", inputs: [1] })),
      [
        1,
      ],
    );

    const busy = new JobLayout("busy");
    await writeJson(s, busy.lease(0), lease({}));
    const error = await failure(client.map(fixture("echo.ts"), { job: "busy", inputs: [1] }));
    assert.ok(error instanceof JobBusyError);
    assert.equal(error.holder.host, "another-host");
    const old = new Date(Date.now() - LEASE_TTL_MS - 1000).toISOString();
    await writeJson(s, busy.lease(0), lease({ since: old, renewedAt: old }));
    assert.deepEqual(await collect(client.map(fixture("echo.ts"), { job: "busy", inputs: [2] })), [
      2,
    ]);
  },
  { backends: ["local"] },
);

targetTest(
  "of many masters taking a free job at once, exactly one gets the lease",
  async (_target, storage) => {
    await using s = await openStorage(storage);
    const layout = new JobLayout("contended");
    const tries = await Promise.allSettled(
      Array.from({ length: 8 }, () => acquireLease(s, layout)),
    );
    const held = tries.filter((t) => t.status === "fulfilled");
    assert.equal(held.length, 1);
    for (const t of tries) {
      if (t.status === "rejected") assert.ok(t.reason instanceof JobBusyError, String(t.reason));
    }
    const holder = (held[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof acquireLease>>>)
      .value;
    assert.equal(await holder.renew(), true);
    const taker = await acquireLease(s, layout, { takeOver: true });
    assert.equal(await holder.renew(), false, "the old holder learns it lost the job");
    assert.match(holder.lost!, /another master took the job over/);
    await taker.release();
    await holder.release();
    const next = await acquireLease(s, layout);
    assert.equal(next.record.epoch, taker.record.epoch + 1, "a released job is free at once");
  },
  { backends: ["local"] },
);
