/**
 * The benchmark helpers compute what their tables say (no timings here).
 *
 * @module
 */

import assert from "node:assert/strict";
import { fixed, median, quantile, ratio } from "../bench/support/stats.ts";
import { renderTable } from "../bench/support/table.ts";
import { idleSlotTime, listScheduleMakespan, seededRandom } from "../bench/support/idle.ts";

Deno.test("median() takes the middle value, or the mean of the two middle ones", () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(quantile([0, 10], 0.25), 2.5);
  assert.throws(() => median([]), RangeError);
});

Deno.test("fixed() and ratio() format numbers and missing values", () => {
  assert.equal(fixed(1.234, 1), "1.2");
  assert.equal(fixed(NaN), "–");
  assert.equal(ratio(3, 1.5), "2.0×");
  assert.equal(ratio(1, 4), "0.25×");
  assert.equal(ratio(1, undefined), "–");
});

Deno.test("renderTable() renders Markdown with notes and rejects ragged rows", () => {
  const text = renderTable({
    title: "T",
    columns: ["a", "b"],
    rows: [["1", "x|y"]],
    notes: ["n"],
  });
  assert.equal(
    text,
    "**T**\n\n| a   | b    |\n| --- | ---- |\n| 1   | x\\|y |\n\n- n\n",
  );
  assert.throws(() => renderTable({ title: "T", columns: ["a"], rows: [["1", "2"]] }), RangeError);
});

Deno.test("idleSlotTime() integrates free slots between the bounds", () => {
  // 2 slots over 0..10: one task 0..10, one 5..10 → idle 5 slot-units.
  assert.equal(idleSlotTime([{ start: 0, end: 10 }, { start: 5, end: 10 }], 2, 0, 10), 5);
  // Intervals are clipped to the window; nothing running means all idle.
  assert.equal(idleSlotTime([{ start: -5, end: 2 }], 1, 0, 4), 2);
  assert.equal(idleSlotTime([], 3, 0, 4), 12);
});

Deno.test("listScheduleMakespan() starts each task on the first free slot", () => {
  assert.equal(listScheduleMakespan([3, 1, 1, 1], 2), 3);
  assert.equal(listScheduleMakespan([1, 1, 1], 1), 3);
});

Deno.test("seededRandom() repeats its sequence for a seed", () => {
  const a = seededRandom(7);
  const b = seededRandom(7);
  const values = [a(), a(), a()];
  assert.deepEqual(values, [b(), b(), b()]);
  assert.ok(values.every((v) => v >= 0 && v < 1));
});
