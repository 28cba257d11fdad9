// deno-lint-ignore-file no-console
/**
 * `deno task bench [NAME…] [--runs N] [--quick] [--no-record] [--before REV]`:
 * run the benchmarks (all, or the ones named), print their tables and append
 * them to bench/RESULTS.md with the exact command, the machine and the load
 * average.
 *
 * ```sh
 * deno task bench                                   # everything (about half an hour)
 * deno task bench local-overhead fairness --runs 5  # some
 * deno task bench --quick --no-record               # smoke test, smaller sizes
 * ```
 *
 * @module
 */

import { type Benchmark, commandLine, parseCommandLine, runBenchmark } from "./support/bench.ts";
import { dataPath } from "./data_path.ts";
import { fairness } from "./fairness.ts";
import { localOverhead } from "./local_overhead.ts";
import { memory } from "./memory.ts";
import { preemption } from "./preemption.ts";
import { statusPage } from "./status_page.ts";
import { storageStream } from "./storage_stream.ts";
import { submission } from "./submission.ts";
import { width } from "./width.ts";
import { warmPods } from "./warm_pods.ts";

const BENCHMARKS: Benchmark[] = [
  localOverhead,
  memory,
  dataPath,
  storageStream,
  submission,
  fairness,
  preemption,
  width,
  statusPage,
  warmPods,
];

const { context, record, help, names } = parseCommandLine(Deno.args);
if (help) {
  console.log(
    "usage: deno task bench [NAME…] [--runs N] [--quick] [--no-record] [--before REV]\n",
  );
  for (const b of BENCHMARKS) console.log(`  ${b.name.padEnd(16)} ${b.description}`);
  Deno.exit(0);
}
const unknown = names.filter((n) => !BENCHMARKS.some((b) => b.name === n));
if (unknown.length > 0) {
  console.error(
    `Cannot run benchmark '${unknown[0]}': choose from ${BENCHMARKS.map((b) => b.name).join(", ")}`,
  );
  Deno.exit(2);
}
const selected = names.length === 0 ? BENCHMARKS : BENCHMARKS.filter((b) => names.includes(b.name));
for (const benchmark of selected) {
  await runBenchmark(benchmark, context, { record, command: commandLine("deno task bench") });
}
