/**
 * The serving worker's marks on standard error (lib/worker/protocol.ts):
 * how the warm pool tells which attempt wrote what, whatever the chunks.
 *
 * @module
 */

import assert from "node:assert/strict";
import { stderrMark, type StderrPiece, stderrPieces } from "../lib/worker/protocol.ts";

/** The pieces of `text` read in chunks of `size` bytes, adjacent text joined. */
async function piecesOf(text: string, size: number): Promise<StderrPiece[]> {
  const bytes = new TextEncoder().encode(text);
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      for (let at = 0; at < bytes.length; at += size) {
        controller.enqueue(bytes.slice(at, at + size));
      }
      controller.close();
    },
  });
  const pieces: StderrPiece[] = [];
  for await (const piece of stderrPieces(stream)) {
    const last = pieces.at(-1);
    if ("text" in piece && last && "text" in last) last.text += piece.text;
    else pieces.push(piece);
  }
  return pieces;
}

Deno.test("stderr marks cut the output at each attempt's start and end, in chunks of any size", async () => {
  const text = `boot\n${stderrMark("start", "a-1")}warn: é\npartial ` +
    `${stderrMark("end", "a-1")}between\u0000not a mark\n${stderrMark("start", "b-2")}` +
    `${stderrMark("end", "b-2")}tail`;
  const expected: StderrPiece[] = [
    { text: "boot\n" },
    { edge: "start", attempt: "a-1" },
    { text: "warn: é\npartial " },
    { edge: "end", attempt: "a-1" },
    { text: "between\u0000not a mark\n" },
    { edge: "start", attempt: "b-2" },
    { edge: "end", attempt: "b-2" },
    { text: "tail" },
  ];
  for (const size of [1, 2, 3, 7, 16, 1000]) {
    assert.deepEqual(await piecesOf(text, size), expected, `chunks of ${size}`);
  }
});

Deno.test("stderr output that only looks like the start of a mark is text", async () => {
  assert.deepEqual(await piecesOf("x\u0000kube", 2), [{ text: "x\u0000kube" }]);
  assert.deepEqual(await piecesOf("x\u0000kubeface:start a-1", 3), [
    { text: "x\u0000kubeface:start a-1" },
  ]);
});
