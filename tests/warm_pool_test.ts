/**
 * The warm pods' storage protocol (lib/worker/pool.ts, lib/format/warm.ts)
 * on a local directory and on the GCS emulator, without a cluster: pod
 * loops racing for offers, stop requests, the closed marker and end
 * records. Outcomes come from what the loops ran and stored, not clocks.
 *
 * @module
 */

import assert from "node:assert/strict";
import { CorruptObjectError } from "../lib/errors.ts";
import { writeJson } from "../lib/format/json.ts";
import { JobLayout } from "../lib/format/layout.ts";
import { encodeWarm, readWarmEnd, WARM_FORMAT, WarmLayout } from "../lib/format/warm.ts";
import { openStorage, type Storage } from "../lib/storage/storage.ts";
import { EXIT_OK, EXIT_STOPPED } from "../lib/worker/exit_codes.ts";
import { runPool } from "../lib/worker/pool.ts";
import { targetTest } from "./support/targets.ts";
import type { AttemptSpec } from "../lib/format/attempt.ts";

const layout = new JobLayout("warm-protocol");
const warm = new WarmLayout(layout);
const fast = { heartbeatMs: 50, idleMs: 400, pollMs: 50 };

async function offer(storage: Storage, spec: AttemptSpec): Promise<void> {
  await storage.put(
    warm.key("offers", spec),
    encodeWarm({ format: WARM_FORMAT, kind: "offer", ...spec }),
  );
}

async function keys(storage: Storage, prefix: string): Promise<string[]> {
  const found: string[] = [];
  for await (const { key } of storage.list(prefix)) found.push(key);
  return found.sort();
}

const onLocalStorages = { backends: ["local" as const] };

targetTest(
  "warm pods: four pod loops racing for 30 offers run each attempt exactly once, then exit idle",
  async (_target, url) => {
    await using storage = await openStorage(url);
    const specs = Array.from({ length: 30 }, (_, i) => ({ task: i, attempt: `a${i}` }));
    await Promise.all(specs.map((spec) => offer(storage, spec)));
    const ran: { pod: string; attempt: string }[] = [];
    const running = new Set<number>();
    let overlap = false;
    const codes = await Promise.all(["p0", "p1", "p2", "p3"].map((pod) =>
      runPool({
        ...fast,
        storage,
        layout,
        pod,
        signal: new AbortController().signal,
        stop: () => {},
        run: async (spec) => {
          if (running.has(spec.task)) overlap = true;
          running.add(spec.task);
          ran.push({ pod, attempt: spec.attempt });
          await new Promise((resolve) => setTimeout(resolve, 5));
          running.delete(spec.task);
          return EXIT_OK;
        },
      })
    ));
    assert.deepEqual(codes, [EXIT_OK, EXIT_OK, EXIT_OK, EXIT_OK], "every pod exited idle");
    assert.equal(overlap, false);
    assert.deepEqual(ran.map((r) => r.attempt).sort(), specs.map((s) => s.attempt).sort());
    assert.deepEqual(await keys(storage, warm.prefix), [], "offers and claims are all gone");
  },
  onLocalStorages,
);

targetTest(
  "warm pods: a stop request reaches the running attempt, whose end record says why it ended",
  async (_target, url) => {
    await using storage = await openStorage(url);
    const spec = { task: 7, attempt: "stopped-1" };
    await offer(storage, spec);
    const stops: string[] = [];
    let release = () => {};
    const code = await runPool({
      ...fast,
      storage,
      layout,
      pod: "p0",
      signal: new AbortController().signal,
      stop: (_reason, attempt) => {
        stops.push(attempt);
        release();
      },
      run: async () => {
        // Claimed: ask for the stop as the master does, and wait for the pod to pass it on.
        assert.ok(await storage.stat(warm.key("claims", spec)), "the claim exists while it runs");
        await storage.put(warm.key("stops", spec), new Uint8Array());
        await new Promise<void>((resolve) => (release = resolve));
        return EXIT_STOPPED;
      },
    });
    assert.equal(code, EXIT_OK, "the pod went on and exited idle");
    assert.deepEqual(stops.slice(0, 1), [spec.attempt]);
    const end = await readWarmEnd(storage, warm.key("ends", spec));
    assert.equal(end.code, EXIT_STOPPED);
    assert.equal(end.pod, "p0");
    assert.equal(await storage.stat(warm.key("claims", spec)), undefined);
  },
  onLocalStorages,
);

targetTest(
  "warm pods: a closed job sends idle pods away at once, leaving its offers untouched",
  async (_target, url) => {
    await using storage = await openStorage(url);
    await offer(storage, { task: 1, attempt: "late" });
    await storage.put(warm.closed, new Uint8Array());
    let ran = 0;
    const code = await runPool({
      ...fast,
      idleMs: 60_000,
      storage,
      layout,
      signal: new AbortController().signal,
      stop: () => {},
      run: () => Promise.resolve(++ran && EXIT_OK),
    });
    assert.equal(code, EXIT_OK);
    assert.equal(ran, 0);
    assert.deepEqual(await keys(storage, warm.folder("claims")), []);
  },
  onLocalStorages,
);

targetTest(
  "warm pods: an end record of another warm format is refused by name and version",
  async (_target, url) => {
    await using storage = await openStorage(url);
    const key = warm.key("ends", { task: 0, attempt: "x" });
    await writeJson(storage, key, { format: 2, kind: "end", task: 0, attempt: "x", code: 1 });
    await assert.rejects(
      readWarmEnd(storage, key),
      (error: Error) =>
        error instanceof CorruptObjectError && /warm format 2/.test(error.message) &&
        /reads format 1/.test(error.message),
    );
  },
  onLocalStorages,
);
