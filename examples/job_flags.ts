// deno-lint-ignore-file no-console
/**
 * A job file with flags of its own next to kubeface's: kubeface's are
 * parsed out first, and the job file parses the rest strictly, so a flag
 * nobody knows is still a mistake (exit status 2).
 *
 * ```sh
 * deno run -A examples/job_flags.ts --count 50
 * deno run -A examples/job_flags.ts --count 50 --backend kubernetes --storage gs://BUCKET/runs
 * deno run -A examples/job_flags.ts --help
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { Client, kubefaceHelp, parseKubefaceArgs, UsageError } from "../mod.ts";

const USAGE = "deno run -A examples/job_flags.ts [--count N] [kubeface options]";
const OWN_HELP = `
Options of this job file:
  --count N                       how many squares to add up [default: 10]
`;

/** This file's own flags, and kubeface's client options. */
function parse(args: string[]) {
  const kubeface = parseKubefaceArgs(args);
  const { values } = parseArgs({
    args: kubeface.rest,
    options: { count: { type: "string", default: "10" } },
    strict: true,
  });
  const count = Number(values.count);
  if (!Number.isInteger(count) || count < 1) {
    throw new UsageError(`--count must be a positive whole number, not '${values.count}'`);
  }
  return { ...kubeface, count };
}

let parsed;
try {
  parsed = parse(Deno.args);
} catch (error) {
  // A kubeface flag with a bad value is a UsageError; an unknown flag is parseArgs' TypeError.
  if (!(error instanceof UsageError || error instanceof TypeError)) throw error;
  console.error(`job_flags.ts: ${error.message}\nRun it with --help to list its options.`);
  Deno.exit(2);
}
if (parsed.help) {
  console.log(kubefaceHelp(USAGE, "Adds up the first N squares, one task per square.") + OWN_HELP);
  Deno.exit(0);
}

const client = new Client(parsed.options);
const squares = client.map<number, number>(new URL("./squares.ts", import.meta.url), {
  inputs: Array.from({ length: parsed.count }, (_, i) => i),
});
let sum = 0;
for await (const square of squares) sum += square;
console.log(`job ${squares.job}: the sum of the first ${parsed.count} squares is ${sum}`);
