/**
 * Long tasks from the command line: results as they finish
 * (`--unordered`), a job whose master (and its worker) was killed resumes
 * from the checkpoint on the rerun, Ctrl-C lets the task checkpoint, and
 * `kubeface status` and `cleanup` show and remove checkpoints.
 *
 * @module
 */

import assert from "node:assert/strict";
import { JobLayout } from "../lib/format/layout.ts";
import { kubeface, spawnKubeface } from "./support/cli.ts";
import { fixture, storedKeys, waitFor } from "./support/jobs.ts";

/** The command-line flags that let a stepper task use markers in `dir`. */
function markerFlags(dir: string): string[] {
  return [
    "--env",
    `MARKER_DIR=${dir}`,
    "--allow-env=MARKER_DIR,MARKER_GCS",
    `--allow-read=${dir}`,
    `--allow-write=${dir}`,
  ];
}

async function withDirs(fn: (storage: string, markers: string) => Promise<void>): Promise<void> {
  const storage = await Deno.makeTempDir({ prefix: "kubeface-long-cli-" });
  const markers = await Deno.makeTempDir({ prefix: "kubeface-markers-" });
  try {
    await fn(storage, markers);
  } finally {
    await Deno.remove(storage, { recursive: true });
    await Deno.remove(markers, { recursive: true });
  }
}

/** The start markers of task 0 (see tests/fixtures/stepper.ts), parsed. */
async function starts(dir: string): Promise<{ pid: number; from: number | null }[]> {
  const out = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.name.startsWith("start-0-")) {
      out.push(JSON.parse(await Deno.readTextFile(`${dir}/${entry.name}`)));
    }
  }
  return out;
}

async function count(dir: string, prefix: string): Promise<number> {
  let n = 0;
  for await (const entry of Deno.readDir(dir)) if (entry.name.startsWith(prefix)) n++;
  return n;
}

Deno.test("kubeface map --unordered writes {index, input, result} rows, as JSON lines or CSV", async () => {
  await withDirs(async (storage) => {
    const out = await kubeface([
      "map",
      "-m",
      fixture("half.ts"),
      "--storage",
      storage,
      "--warm",
      "--unordered",
      "-q",
    ]);
    assert.equal(out.code, 0, out.stderr);
    const rows = out.stdout.trimEnd().split("\n").map((line) => JSON.parse(line));
    assert.deepEqual(
      rows.sort((a, b) => a.index - b.index),
      [1, 2, 3, 4, 5, 6, 7, 8, 9].map((x, i) => ({ index: i, input: x, result: 2 / x })),
    );
    const csv = await kubeface([
      "map",
      "-m",
      fixture("half.ts"),
      "--storage",
      storage,
      "--warm",
      "--unordered",
      "--format",
      "csv",
      "-q",
    ]);
    assert.equal(csv.code, 0, csv.stderr);
    const [header, ...lines] = csv.stdout.trimEnd().split("\n");
    assert.equal(header, "index,input,result");
    assert.deepEqual(
      lines.sort(),
      ["0,1,2", "1,2,1", "2,3,0.6666666666666666"].concat(
        ["3,4,0.5", "4,5,0.4", "5,6,0.3333333333333333", "6,7,0.2857142857142857"],
        ["7,8,0.25", "8,9,0.2222222222222222"],
      ),
    );
  });
});

Deno.test("a job whose master and worker were killed resumes its task from the last checkpoint", async () => {
  await withDirs(async (storage, markers) => {
    const args = [
      "map",
      "-m",
      fixture("long_steps.ts"),
      "--storage",
      storage,
      "--job",
      "resume-1",
      "-q",
      ...markerFlags(markers),
    ];
    const master = spawnKubeface(args);
    await waitFor(
      "the checkpoint of step 10",
      () => Deno.stat(`${markers}/ckpt-0-10`).catch(() => undefined),
      120_000,
    );
    const [first] = await starts(markers);
    // The whole machine went: the master and its worker, with no notice.
    master.kill("SIGKILL");
    Deno.kill(first!.pid, "SIGKILL");
    await master.output();
    const keys = await storedKeys(storage, new JobLayout("resume-1").checkpointsPrefix);
    assert.deepEqual(keys, ["jobs/resume-1/checkpoints/0"]);

    const rerun = await kubeface(args);
    assert.equal(rerun.code, 0, rerun.stderr);
    assert.deepEqual(JSON.parse(rerun.stdout), {
      input: { steps: 40, every: 5, stepMs: 100 },
      result: 780,
    });
    const later = (await starts(markers)).filter((s) => s.pid !== first!.pid);
    assert.equal(later.length, 1);
    assert.ok(later[0]!.from !== null && later[0]!.from >= 10, `resumed from ${later[0]!.from}`);
    const recomputed = (await count(markers, "step-0-")) - 40;
    assert.ok(recomputed >= 0 && recomputed <= 5, `${recomputed} steps recomputed`);
    assert.deepEqual(await storedKeys(storage, "jobs/resume-1/checkpoints/"), []);
  });
});

Deno.test("Ctrl-C lets the task checkpoint; kubeface status lists the checkpoint and cleanup removes it", async () => {
  await withDirs(async (storage, markers) => {
    const master = spawnKubeface([
      "map",
      "-m",
      fixture("long_steps.ts"),
      "--storage",
      storage,
      "--job",
      "ctrl-c-1",
      ...markerFlags(markers),
    ]);
    await waitFor(
      "the checkpoint of step 10",
      () => Deno.stat(`${markers}/ckpt-0-10`).catch(() => undefined),
      120_000,
    );
    master.kill("SIGINT");
    const out = await master.output();
    assert.equal(out.code, 130, new TextDecoder().decode(out.stderr));
    const signalled = await count(markers, "signal-0-");
    assert.equal(signalled, 1, "the task saw its signal");

    const status = await kubeface(["status", "ctrl-c-1", "--storage", storage]);
    assert.equal(status.code, 0, status.stderr);
    assert.match(
      status.stdout,
      /Checkpoints \(1 unfinished task\(s\) resume from them when the job runs again\):\n {2}task 0: last checkpoint \d{4}-\d\d-\d\dT[\d:.]+Z \(.* ago\)\n/,
    );

    const cleanup = await kubeface(["cleanup", "ctrl-c-1", "--yes", "--storage", storage]);
    assert.equal(cleanup.code, 0, cleanup.stderr);
    assert.match(
      cleanup.stderr,
      /ctrl-c-1 \(interrupted\): \d+ object\(s\), [\d.]+ MiB \(1 checkpoint\(s\) of unfinished tasks\)/,
    );
    assert.deepEqual(await storedKeys(storage, "jobs/ctrl-c-1/"), []);
  });
});
