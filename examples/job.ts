// deno-lint-ignore-file no-console
/**
 * A job file: map task modules from a script and use the results as they
 * arrive, in input order. It takes kubeface's flags from its command line,
 * so the same file runs on local processes by default and on Kubernetes
 * with flags.
 *
 * ```sh
 * deno run -A examples/job.ts                              # local processes, local storage
 * deno run -A examples/job.ts --help                       # kubeface's flags and their defaults
 * deno run -A examples/job.ts --job-prefix demo            # keys demo-000 and demo-001: a rerun resumes both
 * deno run -A examples/job.ts --backend kubernetes --storage gs://BUCKET/runs \
 *   --namespace kubeface --parallelism 20
 * ```
 *
 * @module
 */

import { Client } from "../mod.ts";

const client = Client.fromArgs(Deno.args);

// A module next to this file, whatever the working directory is.
const squares = client.map<number, number>(new URL("./squares.ts", import.meta.url), {
  inputs: Array.from({ length: 20 }, (_, i) => i),
});
let sum = 0;
for await (const square of squares) sum += square;
console.log(`job ${squares.job}: the sum of the first 20 squares is ${sum}`);

const slugs = client.map<string, string>(new URL("./slug.ts", import.meta.url));
console.log(`job ${slugs.job}: ${(await Array.fromAsync(slugs)).join(" ")}`);
