/**
 * Files as inputs and results: streamed through storage, checked end to
 * end, stored once per content, and delivered as local files to tasks and as
 * stored files to the consumer.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { JobLayout } from "../lib/format/layout.ts";
import { openStorage } from "../lib/storage/storage.ts";
import { Client, CorruptObjectError, file, StoredFile, TaskError } from "../mod.ts";
import { kubeface } from "./support/cli.ts";
import { collect, failure, fixture, storedKeys } from "./support/jobs.ts";
import { targetTest } from "./support/targets.ts";

const quiet = { speculationPercent: 0, retryDelayMs: 10 };

interface Shouted {
  name: string;
  size: number;
  out: StoredFile;
}

async function withFiles<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "kubeface-files-" });
  try {
    await Deno.writeTextFile(join(dir, "a.txt"), "alpha");
    await Deno.writeTextFile(join(dir, "b.txt"), "bravo bravo");
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

targetTest(
  "file inputs reach tasks as local files, and result files come back as stored files",
  async (target, storage) => {
    await withFiles(async (dir) => {
      const client = new Client(await target.client(storage));
      const run = client.map<unknown, Shouted>(fixture("shout_files.ts"), {
        ...quiet,
        job: "files",
        inputs: [file(join(dir, "a.txt")), file(join(dir, "b.txt")), file(join(dir, "a.txt"))],
      });
      const results = await collect(run);
      assert.deepEqual(results.map((r) => [r.name, r.size]), [["a.txt", 5], ["b.txt", 11], [
        "a.txt",
        5,
      ]]);
      assert.ok(results.every((r) => r.out instanceof StoredFile));
      assert.equal(results[1]!.out.name, "b.txt.shout");
      assert.equal(results[1]!.out.size, 11);
      const saved = join(dir, "out", "b.txt");
      await results[1]!.out.saveTo(saved);
      assert.equal(await Deno.readTextFile(saved), "BRAVO BRAVO");
      assert.equal(await new Response(await results[0]!.out.stream()).text(), "ALPHA");
      const stored = await storedKeys(storage, `${new JobLayout("files").prefix}files/`);
      // a.txt given twice, and ALPHA returned twice, are each stored once: 2 inputs + 2 results.
      assert.equal(stored.length, 4);
    });
  },
  { backends: ["local", "warm"] },
);

targetTest(
  "a missing input file is named with its input before anything is stored",
  async (target, storage) => {
    const client = new Client(await target.client(storage));
    const error = await failure(client.map(fixture("shout_files.ts"), {
      ...quiet,
      inputs: [file("/nonexistent/x.txt")],
    }));
    assert.ok(error instanceof TypeError, String(error));
    assert.match(error.message, /^Cannot use input 0: its file '\/nonexistent\/x.txt': /);
    assert.deepEqual(await storedKeys(storage), []);
  },
  { backends: ["local"] },
);

targetTest(
  "a task cannot return a file outside its scratch directory",
  async (target, storage) => {
    await withFiles(async (dir) => {
      const client = new Client(await target.client(storage));
      const error = await failure(client.map(fixture("leak_file.ts"), {
        ...quiet,
        inputs: [join(dir, "a.txt")],
        permissions: [`--allow-read=${dir}`],
      }));
      assert.ok(error instanceof TaskError, String(error));
      assert.match(
        error.message,
        /Cannot return the file '.*a\.txt': it is not in the task's scratch/,
      );
    });
  },
  { backends: ["local", "warm"] },
);

targetTest(
  "a damaged stored file fails its read, and leaves no file behind",
  async (target, storage) => {
    await withFiles(async (dir) => {
      const client = new Client(await target.client(storage));
      const [result] = await collect(client.map<unknown, Shouted>(fixture("shout_files.ts"), {
        ...quiet,
        inputs: [file(join(dir, "b.txt"))],
      }));
      await using s = await openStorage(storage);
      const key = result!.out.key;
      const bytes = await new Response(await s.get(key)).bytes();
      bytes[3] = bytes[3]! ^ 1;
      await s.put(key, bytes);
      const path = join(dir, "damaged.txt");
      await assert.rejects(result!.out.saveTo(path), CorruptObjectError);
      await assert.rejects(Deno.stat(path), Deno.errors.NotFound);
    });
  },
  { backends: ["local"] },
);

Deno.test("kubeface map --out-dir saves result files, and the rows name them", async () => {
  await withFiles(async (dir) => {
    const input = `${dir}/inputs.ts`;
    await Deno.writeTextFile(
      input,
      `import { file } from ${JSON.stringify(new URL("../lib/task.ts", import.meta.url).href)};
export const inputs = [file(${JSON.stringify(join(dir, "a.txt"))}), file(${
        JSON.stringify(join(dir, "b.txt"))
      })];
export { task } from ${JSON.stringify(fixture("shout_files.ts"))};\n`,
    );
    const out = join(dir, "out");
    const result = await kubeface([
      "map",
      "-m",
      input,
      "--storage",
      join(dir, "s"),
      "--out-dir",
      out,
    ]);
    assert.equal(result.code, 0, result.stderr);
    const rows = result.stdout.trim().split("\n").map((line) => JSON.parse(line));
    assert.deepEqual(rows[1].result.out, { file: join(out, "1", "b.txt.shout"), size: 11 });
    assert.equal(await Deno.readTextFile(join(out, "1", "b.txt.shout")), "BRAVO BRAVO");
    assert.equal(await Deno.readTextFile(join(out, "0", "a.txt.shout")), "ALPHA");
    assert.match(
      rows[0].input.file,
      /^file:\/\/.*\/files\/[0-9a-f]{64}$/,
      "inputs name their copy",
    );
  });
});
