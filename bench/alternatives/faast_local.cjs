// deno-lint-ignore-file no-console
// Calls task(x) = x² for x = 0 … N-1 through faast.js' local provider (warm
// child processes) and prints one JSON line of timings. Copied next to an npm
// install of faastjs by bench/support/alternatives.ts and run with Node:
//   node faast_local.cjs N CONCURRENCY
"use strict";
const fs = require("node:fs");
const { faast } = require("faastjs");
const functions = require("./faast_functions.cjs");

function children() {
  const out = [];
  for (const tid of fs.readdirSync(`/proc/${process.pid}/task`)) {
    const text = fs.readFileSync(`/proc/${process.pid}/task/${tid}/children`, "utf8").trim();
    if (text) out.push(...text.split(/\s+/));
  }
  return out;
}

async function main() {
  const n = Number(process.argv[2] ?? 200);
  const concurrency = Number(process.argv[3] ?? 2);
  const started = performance.now();
  const m = await faast("local", functions, { concurrency, gc: "off" });
  const ready = performance.now();
  const results = await Promise.all(Array.from({ length: n }, (_, i) => m.functions.task(i)));
  const done = performance.now();
  await m.cleanup();
  const cleaned = performance.now();
  // Wait until the child processes are reaped, so the caller's CPU count includes them.
  for (let i = 0; i < 500 && children().length > 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  console.log(JSON.stringify({
    startupMs: ready - started,
    callsMs: done - ready,
    cleanupMs: cleaned - done,
    n: results.length,
    sum: results.reduce((a, b) => a + b, 0),
  }));
  process.exit(0); // faast.js leaves timers that keep Node up for seconds after cleanup
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
