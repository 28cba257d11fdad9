/**
 * How the command writes results and draws progress.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { Io } from "../lib/cli/io.ts";
import { BufferedText, ResultWriter, toJsonValue } from "../lib/cli/output.ts";
import { formatDuration, ProgressLine, progressLine } from "../lib/cli/progress.ts";
import type { Progress } from "../lib/master/state.ts";

function fakeIo(isTerminal: boolean): Io & { errText: string } {
  const io = {
    errText: "",
    out() {},
    err(text: string) {
      io.errText += text;
    },
    isTerminal,
    confirm: () => Promise.resolve(undefined),
    onInterrupt: () => () => {},
  };
  return io;
}

const progress: Progress = {
  job: "squares-1",
  phase: "running",
  total: 100,
  pending: 40,
  running: 4,
  done: 55,
  failed: 1,
  reused: 10,
  retried: 2,
  speculative: 1,
  elapsedMs: 65_000,
  etaMs: 50_000,
};

Deno.test("values JSON cannot hold become their nearest plain form", () => {
  assert.deepEqual(toJsonValue(2n ** 64n), "18446744073709551616");
  assert.deepEqual(toJsonValue(new Map([["a", 1n]])), { a: "1" });
  assert.deepEqual(toJsonValue(new Map([[1, "x"]])), [[1, "x"]]);
  assert.deepEqual(toJsonValue(new Set([1, 2])), [1, 2]);
  assert.deepEqual(toJsonValue(new Uint8Array([1, 2])), [1, 2]);
  assert.deepEqual(toJsonValue(new Date(0)), "1970-01-01T00:00:00.000Z");
  assert.deepEqual(toJsonValue(new TypeError("no")), { name: "TypeError", message: "no" });
  assert.deepEqual(toJsonValue({ a: undefined, b: [NaN] }), { a: null, b: ["NaN"] });
});

Deno.test("CSV rows quote commas, quotes and newlines and start with a header", async () => {
  let text = "";
  const writer = new ResultWriter("csv", (t) => void (text += t));
  await writer.row(0, "a,b", 'say "hi"');
  await writer.row(1, { x: 1 }, "line\nbreak");
  assert.equal(text, 'input,result\n"a,b","say ""hi"""\n"{""x"":1}","line\nbreak"\n');
  let empty = "";
  await new ResultWriter("csv", (t) => void (empty += t)).end();
  assert.equal(empty, "input,result\n");
});

Deno.test("rows go out in chunks, in order, and a slow job's rows within the delay", async () => {
  const writes: string[] = [];
  const buffer = new BufferedText((text) => {
    writes.push(text);
    return Promise.resolve();
  }, { limit: 10, delay: 30 });
  await buffer.add("a\n");
  await buffer.add("b\n");
  assert.deepEqual(writes, [], "nothing is written before the chunk fills or the delay passes");
  await new Promise((resolve) => setTimeout(resolve, 80));
  assert.deepEqual(writes, ["a\nb\n"], "the delay hands on what waited");
  for (const row of ["ccc\n", "ddd\n", "eee\n"]) await buffer.add(row);
  assert.deepEqual(writes, ["a\nb\n", "ccc\nddd\neee\n"], "a full chunk is written at once");
  await buffer.add("f\n");
  await buffer.flush();
  assert.deepEqual(writes.join(""), "a\nb\nccc\nddd\neee\nf\n");
});

Deno.test("a failed write (a closed pipe) is thrown by the next call", async () => {
  const buffer = new BufferedText(() => Promise.reject(new Error("Broken pipe")), { delay: 5 });
  await buffer.add("a\n");
  await new Promise((resolve) => setTimeout(resolve, 40));
  await assert.rejects(() => buffer.add("b\n"), /Broken pipe/);
  await assert.rejects(() => buffer.flush(), /Broken pipe/);
});

Deno.test("the progress line shows counts, elapsed time and ETA", () => {
  assert.equal(
    progressLine(progress),
    "squares-1: 55/100 done, 4 running, 1 failed, 10 reused, 2 retried, 1 speculative | 1m05s elapsed, ETA 50.0s",
  );
  assert.equal(formatDuration(3_725_000), "1h02m");
});

Deno.test("progress is drawn on a terminal and not elsewhere or when quiet", () => {
  const tty = fakeIo(true);
  const line = new ProgressLine(tty, false, 0);
  line.update(progress);
  line.end();
  assert.ok(tty.errText.startsWith("\r\x1b[2Ksquares-1: 55/100 done"), JSON.stringify(tty.errText));
  assert.ok(tty.errText.endsWith("\n"));
  for (const [io, quiet] of [[fakeIo(false), false], [fakeIo(true), true]] as const) {
    const silent = new ProgressLine(io, quiet, 0);
    silent.update(progress);
    silent.end();
    assert.equal(io.errText, "");
  }
});
