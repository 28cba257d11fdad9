/**
 * kubeface's flags on a job file's command line: every flag of where and
 * how jobs run becomes a client option, the job file's own arguments are
 * left in order, and mistakes are usage errors.
 *
 * @module
 */

import assert from "node:assert/strict";
import { BACKEND_FLAG_GROUPS } from "../lib/cli/backend_flags.ts";
import { JOB_FLAGS } from "../lib/cli/flags.ts";
import { KUBERNETES_DEFAULTS } from "../lib/backends/kubernetes/options.ts";
import { DEFAULTS, kubefaceHelp, parseKubefaceArgs, UsageError } from "../mod.ts";

Deno.test("parseKubefaceArgs turns kubeface's flags into client options", () => {
  const { options, rest, help } = parseKubefaceArgs([
    "--storage",
    "gs://bucket/runs",
    "--backend=kubernetes",
    "--job-prefix",
    "nightly",
    "--config",
    "other/deno.json",
    "--parallelism",
    "16",
    "--items-per-task",
    "3",
    "--overwrite",
    "--no-fail-fast",
    "--max-retries",
    "5",
    "--retry-task-errors",
    "--retry-delay",
    "2s",
    "--timeout",
    "2h",
    "--speculation-percent",
    "10",
    "--speculation-runtime-percentile",
    "95",
    "--speculation-max-reruns",
    "2",
    "--status-interval",
    "30s",
    "--env",
    "A=1",
    "--env",
    "B=2",
    "-A",
    "--allow-net=example.com",
    "--namespace",
    "batch",
    "--cpu",
    "none",
    "--memory",
    "4Gi",
    "--node-selector",
    "pool=big",
    "--warm",
  ]);
  assert.equal(help, false);
  assert.deepEqual(rest, []);
  assert.deepEqual(options, {
    storage: "gs://bucket/runs",
    backend: "kubernetes",
    jobPrefix: "nightly",
    config: "other/deno.json",
    parallelism: 16,
    itemsPerTask: 3,
    overwrite: true,
    failFast: false,
    maxRetries: 5,
    retryTaskErrors: true,
    retryDelayMs: 2000,
    timeoutMs: 7_200_000,
    speculationPercent: 10,
    speculationRuntimePercentile: 95,
    speculationMaxReruns: 2,
    statusIntervalMs: 30_000,
    env: { A: "1", B: "2" },
    permissions: ["-A", "--allow-net=example.com"],
    local: { warm: true },
    kubernetes: {
      warm: true,
      namespace: "batch",
      cpu: null,
      memory: "4Gi",
      nodeSelector: { pool: "big" },
    },
  });
});

Deno.test("parseKubefaceArgs leaves the job file's own arguments, in order", () => {
  const { options, rest } = parseKubefaceArgs([
    "--count",
    "5",
    "--storage",
    "/tmp/runs",
    "input.csv",
    "--dry-run",
    "--",
    "--parallelism",
    "3",
  ]);
  assert.deepEqual(options, { storage: "/tmp/runs" });
  assert.deepEqual(rest, ["--count", "5", "input.csv", "--dry-run", "--", "--parallelism", "3"]);
});

Deno.test("parseKubefaceArgs reports --help and -h, and sets a logger for --verbose", () => {
  assert.equal(parseKubefaceArgs(["--help"]).help, true);
  assert.equal(parseKubefaceArgs(["-h", "--count", "1"]).help, true);
  const lines: string[] = [];
  const { options } = parseKubefaceArgs(["--verbose"], {
    logger: (channel, message) => lines.push(`${channel}: ${message}`),
  });
  options.logger!("storage", "put x");
  assert.deepEqual(lines, ["storage: put x"]);
  assert.equal(parseKubefaceArgs([]).options.logger, undefined);
});

Deno.test("a bad kubeface flag value is a UsageError naming it", () => {
  for (
    const [args, message] of [
      [
        ["--parallelism", "many"],
        "--parallelism must be a whole number from 1 to 100000, not 'many'",
      ],
      [["--parallelism", "0"], "--parallelism must be a whole number from 1 to 100000, not '0'"],
      [["--speculation-percent", "150"], /^Cannot use speculationPercent 150/],
      [["--timeout", "soon"], /^--timeout must be a duration/],
      [
        ["--backend", "nowhere"],
        "Cannot use backend 'nowhere': choose one of local, container, kubernetes",
      ],
      [["--job", "no spaces"], /^Cannot use job key 'no spaces'/],
      [["--job-prefix=.x"], /^Cannot use job prefix '\.x'/],
      [
        ["--job", "a", "--job-prefix", "b"],
        "Cannot use --job and --job-prefix together: give one of them",
      ],
      [["--memory", "lots"], /^Cannot use memory request 'lots'/],
      [
        ["--allow-bogus"],
        /^Cannot grant permission '--allow-bogus': use -A, --allow-all or --allow-NAME/,
      ],
      [["--env", "NOEQUALS"], "--env takes KEY=VALUE, not 'NOEQUALS'"],
      [["--storage"], /^Option '--storage <value>' argument missing/],
      [["--overwrite=yes"], /^Option '--overwrite' does not take an argument/],
    ] as const
  ) {
    assert.throws(() => parseKubefaceArgs(args), (error: unknown) => {
      assert.ok(error instanceof UsageError, `${args.join(" ")}: ${error}`);
      assert.equal(error.exitCode, 2);
      if (typeof message === "string") assert.equal(error.message, message);
      else assert.match(error.message, message);
      return true;
    });
  }
});

Deno.test("kubefaceHelp lists every kubeface flag with the defaults the API uses", () => {
  const help = kubefaceHelp("deno run -A nightly.ts [options]");
  assert.match(help, /^Usage: deno run -A nightly\.ts \[options\]\n/);
  for (const spec of [...JOB_FLAGS, ...BACKEND_FLAG_GROUPS.flatMap((g) => g.flags)]) {
    assert.match(help, new RegExp(`--${spec.name}\\b`), `--${spec.name} is listed`);
  }
  assert.match(
    help,
    new RegExp(
      `--parallelism N +most tasks running at once \\[default: ${DEFAULTS.parallelism}\\]`,
    ),
  );
  assert.match(help, new RegExp(`--max-retries N .*\\[default: ${DEFAULTS.maxRetries}\\]`));
  assert.match(
    help,
    new RegExp(`--speculation-percent P .*\\[default: ${DEFAULTS.speculationPercent}\\]`),
  );
  assert.match(
    help,
    new RegExp(`--cpu QTY .*none for no request \\[default: ${KUBERNETES_DEFAULTS.cpu}\\]`),
  );
  assert.match(help, new RegExp(`--memory QTY .*\\[default: ${KUBERNETES_DEFAULTS.memory}\\]`));
  assert.match(help, /--allow-\* \[=…\] +Deno permissions for tasks/);
});
