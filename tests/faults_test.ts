/**
 * A job survives a flaky storage: every request of the master and the
 * workers goes through a proxy that fails some of them (503, 429, dropped
 * connections, responses cut half way).
 *
 * @module
 */

import assert from "node:assert/strict";
import { Client } from "../mod.ts";
import { startEmulator } from "./infra/gcs_emulator.ts";
import { startFaultyProxy } from "./infra/faulty_proxy.ts";
import { fixture, resultHeaders } from "./support/jobs.ts";
import { targetTest } from "./support/targets.ts";

targetTest(
  "a job of 200 tasks completes through storage failing 10% of requests, every result right and none twice",
  async (target) => {
    await using emulator = await startEmulator();
    await emulator.createBucket("flaky");
    // The emulator cannot resume an upload session (see tests/infra/gcs_emulator.ts): spare its chunks.
    await using proxy = startFaultyProxy({
      upstream: emulator.url,
      failureRate: 0.1,
      seed: 7,
      spare: (_method, request) => request.includes("upload_id="),
    });
    const before = Deno.env.get("STORAGE_EMULATOR_HOST");
    Deno.env.set("STORAGE_EMULATOR_HOST", proxy.url); // the master and every worker
    try {
      const client = new Client({ ...(await target.client("gs://flaky/runs/")) });
      const run = client.map<number, number>(fixture("cube.ts"), {
        parallelism: 4,
        speculationPercent: 0,
        retryDelayMs: 50,
        maxRetries: 3,
      });
      const results: number[] = [];
      for await (const value of run) results.push(value);
      assert.deepEqual(results, Array.from({ length: 200 }, (_, i) => i ** 3));
      const failed = Object.values(proxy.stats.failed).reduce((a, b) => a + b, 0);
      assert.ok(failed > 50, `only ${failed} of ${proxy.stats.requests} requests failed`);
      for (const kind of ["503", "429", "reset", "cut"] as const) {
        assert.ok(proxy.stats.failed[kind] > 0, `no request failed with ${kind}`);
      }
      const ok = (await resultHeaders("gs://flaky/runs/", run.job)).filter((h) =>
        h.status === "ok"
      );
      assert.equal(new Set(ok.map((h) => h.task)).size, 200, "every task has a result");
    } finally {
      if (before === undefined) Deno.env.delete("STORAGE_EMULATOR_HOST");
      else Deno.env.set("STORAGE_EMULATOR_HOST", before);
    }
  },
  { storages: ["gcs"], backends: ["local", "warm"] },
);
