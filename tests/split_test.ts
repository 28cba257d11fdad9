/**
 * Splitting maps wider than one Indexed Job (lib/backends/kubernetes/split.ts); the Jobs
 * themselves are tested against the real apiserver in tests/kwok_test.ts.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  parseSplitAnnotation,
  shareParallelism,
  splitAnnotation,
  splitAttempts,
} from "../lib/backends/kubernetes/split.ts";

Deno.test("splitAttempts() cuts attempts into Jobs of at most the limit, in order", () => {
  const items = Array.from({ length: 250 }, (_, i) => i);
  const chunks = splitAttempts(items, 100);
  assert.deepEqual(chunks.map((c) => c.length), [100, 100, 50]);
  assert.deepEqual(chunks.flat(), items);
  assert.deepEqual(splitAttempts(items, 100_000), [items]);
});

Deno.test("splitAttempts() refuses a limit below 1", () => {
  assert.throws(() => splitAttempts([1], 0), {
    name: "RangeError",
    message:
      /Cannot split attempts into Jobs of 0: give a whole number of completions of 1 or more/,
  });
});

Deno.test("shareParallelism() gives the earliest Jobs the parallelism first", () => {
  assert.deepEqual(shareParallelism(120, [100, 100, 50]), [100, 20, 0]);
  assert.deepEqual(shareParallelism(120, [0, 30, 50]), [0, 30, 50]);
  assert.deepEqual(shareParallelism(120, [10, 100, 50]), [10, 100, 10]);
  const shares = shareParallelism(7, [3, 3, 3]);
  assert.equal(shares.reduce((a, b) => a + b, 0), 7, "never more than the parallelism");
});

Deno.test("the split annotation names the group, the position and the group's parallelism", () => {
  const place = { group: "kf-squares-ab12cd34", position: 2, parallelism: 5000 };
  assert.equal(splitAnnotation(place), "kf-squares-ab12cd34/2/5000");
  assert.deepEqual(parseSplitAnnotation(splitAnnotation(place)), place);
  assert.equal(parseSplitAnnotation(undefined), undefined);
  assert.equal(parseSplitAnnotation("nonsense"), undefined);
});
