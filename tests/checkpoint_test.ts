/**
 * The stored form of a checkpoint: a damaged record is always recognised
 * (truncated anywhere, any byte flipped) and never read back as other
 * state; and a state that cannot be stored is named in the error.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  CHECKPOINT_FORMAT,
  CheckpointCorruptError,
  encodeCheckpoint,
  readCheckpoint,
} from "../lib/format/checkpoint.ts";
import { findUncloneable } from "../lib/format/clone_path.ts";
import { concatBytes } from "../lib/bytes.ts";
import { decodeValue, encodeRecord, encodeValue } from "../lib/format/records.ts";
import { encodeState } from "../lib/worker/thread_context.ts";
import { AttemptCheckpoints } from "../lib/worker/checkpoints.ts";
import { JobLayout } from "../lib/format/layout.ts";
import { openStorage } from "../lib/storage/storage.ts";

const origin = {
  job: "cp-1",
  task: 3,
  input: 3,
  attempt: "a1",
  writtenAt: "2026-12-01T10:00:00.000Z",
};
const state = { step: 1200, sum: 719_400, weights: new Float64Array([0.5, -1.25]) };

function record(): Uint8Array {
  return concatBytes(encodeCheckpoint(origin, encodeValue(state, "state")));
}

const read = (bytes: Uint8Array, input = 3) =>
  readCheckpoint(ReadableStream.from([bytes]), { job: "cp-1", input });

Deno.test("a checkpoint reads back as it was written, with its origin and format", async () => {
  const { header, payload } = await read(await record());
  assert.equal(header.kind, "checkpoint");
  assert.equal(header.format, CHECKPOINT_FORMAT);
  assert.deepEqual(
    { job: header.job, task: header.task, input: header.input, attempt: header.attempt },
    { job: "cp-1", task: 3, input: 3, attempt: "a1" },
  );
  assert.equal(header.writtenAt, origin.writtenAt);
  assert.deepEqual(decodeValue(header.encoding, payload), state);
});

Deno.test("a checkpoint cut short anywhere is recognised as damaged", async () => {
  const bytes = await record();
  for (let length = 0; length < bytes.length; length++) {
    const error = await read(bytes.slice(0, length)).then(() => undefined, (e) => e);
    assert.ok(
      error instanceof CheckpointCorruptError,
      `cut at ${length} of ${bytes.length}: ${error}`,
    );
  }
});

Deno.test("a checkpoint with any byte flipped is recognised, or reads back the same state", async () => {
  const bytes = await record();
  for (let at = 0; at < bytes.length; at++) {
    for (const bit of [0x01, 0x80]) {
      const damaged = bytes.slice();
      damaged[at] = damaged[at]! ^ bit;
      const outcome = await read(damaged).then((r) => r, (e) => e);
      if (outcome instanceof Error) {
        assert.ok(outcome instanceof CheckpointCorruptError, `byte ${at}: ${outcome}`);
        continue;
      }
      // Only a byte of the header's own text (e.g. its time) can change unnoticed.
      assert.deepEqual(
        decodeValue(outcome.header.encoding, outcome.payload),
        state,
        `byte ${at} ^ ${bit} gave another state`,
      );
    }
  }
});

Deno.test("another input's or job's checkpoint, or a newer format, is not used", async () => {
  const bytes = await record();
  await assert.rejects(read(bytes, 4), CheckpointCorruptError, "belongs to input 3");
  const value = encodeValue(state, "state");
  const newer = concatBytes(
    encodeRecord(
      { kind: "checkpoint", format: 9, ...origin },
      value,
    ),
  );
  await assert.rejects(
    read(newer),
    (e: Error) =>
      e instanceof CheckpointCorruptError &&
      /it has format 9, and this kubeface reads format 1/.test(e.message),
  );
});

Deno.test("the part of a state that cannot be cloned is found and named", () => {
  assert.equal(findUncloneable({ a: [1, { b: new Map([["k", 1]]) }] }, "state"), undefined);
  assert.deepEqual(findUncloneable({ model: { activate: Math.max } }, "state"), {
    path: "state.model.activate",
    what: "a function",
  });
  assert.deepEqual(findUncloneable({ layers: [1, 2, Symbol("x")] }, "state"), {
    path: "state.layers[2]",
    what: "a symbol",
  });
  assert.deepEqual(findUncloneable({ cache: new Map([["k", new WeakMap()]]) }, "state"), {
    path: 'state.cache.get("k")',
    what: "a WeakMap",
  });
  assert.deepEqual(findUncloneable({ "odd key": () => 1 }, "state"), {
    path: 'state["odd key"]',
    what: "a function",
  });
  const loop: Record<string, unknown> = { n: 1 };
  loop.self = loop;
  assert.equal(findUncloneable(loop, "state"), undefined, "cycles are cloneable");
});

Deno.test("checkpointing a state that cannot be cloned throws a TypeError naming the part", () => {
  assert.throws(
    () => encodeState({ step: 3, model: { activate: Math.max } }, 7),
    (e: Error) =>
      e instanceof TypeError &&
      e.message.startsWith(
        "Cannot checkpoint input 7: state.model.activate is a function, which structured clone cannot copy; checkpoint plain data",
      ),
  );
  assert.throws(() => encodeState(() => 1, 0), /Cannot checkpoint input 0: state is a function/);
});

Deno.test("a worker stores and restores only its task's own inputs' checkpoints", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kubeface-checkpoints-" });
  try {
    await using storage = await openStorage(dir);
    const layout = new JobLayout("cp-1");
    const warnings: string[] = [];
    const checkpoints = new AttemptCheckpoints({
      storage,
      layout,
      task: 1,
      attempt: "a1",
      inputs: { first: 2, count: 2 },
      warn: (message) => warnings.push(message),
    });
    const { encoding, bytes } = encodeValue(state, "state");
    const stored = await checkpoints.checkpoint({
      type: "checkpoint",
      id: 1,
      index: 3,
      encoding,
      payload: bytes,
    });
    assert.equal(stored.error, undefined);
    const forged = await checkpoints.checkpoint({
      type: "checkpoint",
      id: 2,
      index: 4,
      encoding,
      payload: bytes,
    });
    assert.equal(
      forged.error?.message,
      "Cannot store the checkpoint of input 4 from task 1: it runs inputs 2 to 3 only",
    );
    assert.equal(await storage.stat(layout.checkpoint(4)), undefined);
    const peek = await checkpoints.restore({ type: "restore", id: 3, index: 0 });
    assert.ok("error" in peek && peek.error);
    assert.match(peek.error.message, /^Cannot read the checkpoint of input 0 from task 1: it runs/);
    const own = await checkpoints.restore({ type: "restore", id: 4, index: 3 });
    assert.ok("payload" in own);
    assert.deepEqual(decodeValue(own.encoding, own.payload), state);
    assert.equal(checkpoints.failure, undefined, "a refusal is the task's doing, not storage's");
    await checkpoints.removeAll();
    assert.equal(await storage.stat(layout.checkpoint(3)), undefined);
    assert.deepEqual(warnings, []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
