/**
 * Commands about jobs in a storage root: `jobs`, `status`, `logs` and
 * `cleanup`.
 *
 * @module
 */

import { createBackend } from "../backends/select.ts";
import { NotFoundError } from "../errors.ts";
import { JobLayout } from "../format/layout.ts";
import {
  countObjects,
  deleteJob,
  type JobListing,
  listJobs,
  readStatus,
  stateOf,
} from "../catalog.ts";
import { defaultStorage } from "../options.ts";
import { openStorage, type Storage } from "../storage/storage.ts";
import { serveStatus, type StatusServer } from "../status/serve.ts";
import type { JobStatus } from "../status/status.ts";
import { applyBackendFlags, backendFlags, backendHelpGroups } from "./backend_flags.ts";
import {
  duration,
  type FlagSpec,
  type FlagValues,
  helpText,
  int,
  parseFlags,
  str,
} from "./flags.ts";
import { type Io, UsageError } from "./io.ts";
import { formatDuration } from "./progress.ts";

const STORAGE_FLAG: FlagSpec = {
  name: "storage",
  type: "string",
  value: "URL",
  help: "storage root: a directory or gs://BUCKET/PREFIX (env KUBEFACE_STORAGE)",
  default: "~/.local/share/kubeface",
};

async function storageOf(values: FlagValues): Promise<Storage> {
  return await openStorage(str(values, "storage") ?? defaultStorage());
}

function ago(iso: string, now = Date.now()): string {
  return `${formatDuration(Math.max(0, now - Date.parse(iso)))} ago`;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join("  ").trimEnd()).join(
    "\n",
  ) +
    "\n";
}

/** Help of `kubeface jobs`. */
export const JOBS_HELP = helpText(
  "kubeface jobs [--all] [--storage URL]",
  "List the jobs in a storage root, newest first: state (running, stale, done, failed,\ninterrupted), progress and age. Without --all, done jobs are left out.\nA stale job's master stopped writing: rerun it with its key to resume it.",
  [["Options", [
    { name: "all", type: "boolean", short: "a", help: "also list jobs that are done" },
    STORAGE_FLAG,
  ]]],
);

/** `kubeface jobs`. */
export async function jobsCommand(args: string[], io: Io): Promise<number> {
  const { values } = parseFlags(args, [
    { name: "all", type: "boolean", short: "a", help: "" },
    STORAGE_FLAG,
  ]);
  if (values.help) {
    await io.out(JOBS_HELP);
    return 0;
  }
  await using storage = await storageOf(values);
  const jobs = (await listJobs(storage)).filter((j) => values.all || j.state !== "done");
  if (jobs.length === 0) {
    await io.out(`No ${values.all ? "" : "unfinished "}jobs in ${storage.url}\n`);
    return 0;
  }
  await io.out(table([
    ["JOB", "STATE", "PROGRESS", "FAILED", "BACKEND", "STARTED", "UPDATED"],
    ...jobs.map((j: JobListing) => [
      j.job,
      j.state,
      `${j.done}/${j.total}`,
      String(j.failed),
      j.backend,
      ago(j.startedAt),
      ago(j.updatedAt),
    ]),
  ]));
  return 0;
}

const STATUS_FLAGS: FlagSpec[] = [
  { name: "json", type: "boolean", help: "print the status page as JSON" },
  {
    name: "serve",
    type: "boolean",
    help: "serve the HTML status page on 127.0.0.1, live, until Ctrl-C",
  },
  {
    name: "port",
    type: "string",
    value: "N",
    help: "port for --serve; 0 picks a free one",
    default: "0",
  },
  STORAGE_FLAG,
];

/** Help of `kubeface status`. */
export const STATUS_HELP = helpText(
  "kubeface status KEY [--json | --serve [--port N]] [--storage URL]",
  "Print one job's status: counts, times, failed and running tasks. With --serve,\nshow its HTML status page (timeline, run times, failures) in a browser instead.",
  [["Options", STATUS_FLAGS]],
);

/** Render a status for people. */
export function describeStatus(status: JobStatus, now = Date.now()): string {
  const c = status.counts;
  const state = stateOf({ ...status, total: c.total, done: c.done, failed: c.failed }, now);
  const lines = [
    `Job ${status.job}: ${state}`,
    `  backend ${status.backend}, parallelism ${status.parallelism}, module ${status.module}`,
    `  started ${status.startedAt} (${ago(status.startedAt, now)}), updated ${
      ago(status.updatedAt, now)
    }`,
    `  ${c.total} task(s) for ${status.inputs} input(s): ${c.done} done (${c.reused} reused), ${c.running} running, ${c.pending} pending, ${c.failed} failed; ${c.retried} retried, ${c.speculative} speculative`,
    `  status page ${status.links.html}`,
  ];
  if (status.error) lines.push(`  error: ${status.error}`);
  const failed = status.tasks.filter((t) => t.phase === "failed");
  if (failed.length > 0) {
    lines.push("Failed tasks:");
    for (const t of failed.slice(0, 20)) lines.push(`  task ${t.task}: ${t.error ?? "failed"}`);
    if (failed.length > 20) lines.push(`  … and ${failed.length - 20} more`);
  }
  const running = status.tasks.filter((t) => t.phase === "running");
  if (running.length > 0) {
    lines.push("Running tasks:");
    for (const t of running.slice(0, 20)) {
      const a = t.attempts.filter((x) => !x.endedAt).at(-1) ?? t.attempts.at(-1);
      const since = a?.startedAt
        ? `running for ${formatDuration(now - Date.parse(a.startedAt))}`
        : "waiting";
      lines.push(
        `  task ${t.task}: attempt ${a?.id ?? "?"}${a?.host ? ` on ${a.host}` : ""}, ${since}${
          a?.detail ? ` (${a.detail})` : ""
        }`,
      );
    }
    if (running.length > 20) lines.push(`  … and ${running.length - 20} more`);
  }
  return lines.join("\n") + "\n";
}

/** `kubeface status`. */
export async function statusCommand(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parseFlags(args, STATUS_FLAGS, 1);
  if (values.help) {
    await io.out(STATUS_HELP);
    return 0;
  }
  const [key] = positionals;
  if (!key) throw new UsageError("give the key of the job");
  const port = int(values, "port");
  if (port !== undefined && !values.serve) throw new UsageError("--port needs --serve");
  if (values.serve && values.json) throw new UsageError("give either --json or --serve, not both");
  if (port !== undefined && port > 65535) {
    throw new UsageError(`--port must be from 1 to 65535, or 0 for a free port, not ${port}`);
  }
  await using storage = await storageOf(values);
  let status: JobStatus;
  try {
    status = await readStatus(storage, key);
  } catch (error) {
    if (error instanceof NotFoundError) {
      io.err(
        `kubeface: no job '${key}' in ${storage.url}; list the jobs there with kubeface jobs --all\n`,
      );
      return 1;
    }
    throw error;
  }
  if (values.serve) return await serve(storage, key, port ?? 0, io);
  await io.out(values.json ? JSON.stringify(status, null, 2) + "\n" : describeStatus(status));
  return 0;
}

/** Serve a job's status page until Ctrl-C. */
async function serve(storage: Storage, key: string, port: number, io: Io): Promise<number> {
  const stop = new AbortController();
  const removeHandler = io.onInterrupt(() => stop.abort());
  try {
    let server: StatusServer;
    try {
      server = await serveStatus(storage, key, { port, signal: stop.signal });
    } catch (error) {
      if (!(error instanceof Deno.errors.AddrInUse)) throw error;
      io.err(
        `kubeface: cannot serve on 127.0.0.1:${port}: the port is in use; pass another --port, or --port 0 for a free one\n`,
      );
      return 1;
    }
    await io.out(`Serving the status page of job ${key} at ${server.url}\n`);
    io.err("kubeface: the page refreshes itself while the job runs; press Ctrl-C to stop\n");
    await server.finished;
    return 0;
  } finally {
    removeHandler();
  }
}

/** Help of `kubeface logs`. */
export const LOGS_HELP = helpText(
  "kubeface logs KEY [TASK] [--storage URL]",
  "Print the output of a job's workers: every attempt of TASK, or of every task.",
  [
    ["Options", [STORAGE_FLAG]],
    ...backendHelpGroups(),
  ],
);

/** `kubeface logs`. */
export async function logsCommand(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parseFlags(args, [STORAGE_FLAG, ...backendFlags()], 2);
  if (values.help) {
    await io.out(LOGS_HELP);
    return 0;
  }
  const [key, taskText] = positionals;
  if (!key) throw new UsageError("give the key of the job");
  if (taskText !== undefined && !/^\d+$/.test(taskText)) {
    throw new UsageError(`TASK must be a task index, not '${taskText}'`);
  }
  const task = taskText === undefined ? undefined : Number(taskText);
  await using storage = await storageOf(values);
  const layout = new JobLayout(key);
  const prefix = `${layout.prefix}logs/${task === undefined ? "" : `${task}/`}`;
  let printed = 0;
  for await (const { key: logKey } of storage.list(prefix)) {
    const [, t, attempt] = /logs\/(\d+)\/(.+)\.log$/.exec(logKey) ?? [];
    await io.out(`==> task ${t}, attempt ${attempt} <==\n`);
    for await (const chunk of await storage.get(logKey)) {
      await io.out(new TextDecoder().decode(chunk));
    }
    printed++;
  }
  if (printed === 0) {
    const backend = await backendOf(values, storage, key);
    for await (const log of backend?.logs?.(key, task) ?? []) {
      await io.out(`==> task ${log.task}, attempt ${log.attempt} <==\n${log.text}`);
      printed++;
    }
  }
  if (printed === 0) {
    io.err(
      `kubeface: no logs of ${
        task === undefined ? "" : `task ${task} of `
      }job '${key}' in ${storage.url}\n`,
    );
    return 1;
  }
  return 0;
}

/** The backend a job ran on, configured from the flags. */
async function backendOf(values: FlagValues, storage: Storage, key: string) {
  let name: string;
  try {
    name = (await readStatus(storage, key)).backend;
  } catch {
    return undefined;
  }
  return await createBackend(name, applyBackendFlags(values, {}));
}

const CLEANUP_FLAGS: FlagSpec[] = [
  { name: "done", type: "boolean", help: "delete every job that is done" },
  {
    name: "older-than",
    type: "string",
    value: "DURATION",
    help: "delete every job not updated for DURATION, e.g. 7d",
  },
  { name: "yes", type: "boolean", short: "y", help: "do not ask before deleting" },
  { name: "force", type: "boolean", help: "also delete jobs that are still running" },
  STORAGE_FLAG,
];

/** Help of `kubeface cleanup`. */
export const CLEANUP_HELP = helpText(
  "kubeface cleanup (KEY… | --done | --older-than DURATION) [--yes] [--storage URL]",
  "Delete jobs: their objects in storage and what their backend keeps (Kubernetes\nJobs and pods). Says what it will delete and asks first, unless --yes.",
  [
    ["Options", CLEANUP_FLAGS],
    ...backendHelpGroups(),
  ],
);

/** `kubeface cleanup`. */
export async function cleanupCommand(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parseFlags(args, [...CLEANUP_FLAGS, ...backendFlags()], Infinity);
  if (values.help) {
    await io.out(CLEANUP_HELP);
    return 0;
  }
  const olderThan = duration(values, "older-than");
  if (positionals.length === 0 && !values.done && olderThan === undefined) {
    throw new UsageError("name the jobs to delete, or pass --done or --older-than");
  }
  await using storage = await storageOf(values);
  const all = await listJobs(storage);
  const now = Date.now();
  const chosen = all.filter((j) =>
    positionals.includes(j.job) ||
    (values.done === true && j.state === "done") ||
    (olderThan !== undefined && now - Date.parse(j.updatedAt) > olderThan)
  );
  for (const key of positionals) {
    if (!all.some((j) => j.job === key) && (await countObjects(storage, key)).objects === 0) {
      io.err(`kubeface: no job '${key}' in ${storage.url}\n`);
      return 1;
    }
    if (!chosen.some((j) => j.job === key)) {
      chosen.push({ job: key, state: "interrupted", backend: "local" } as JobListing);
    }
  }
  const running = chosen.filter((j) => j.state === "running");
  if (running.length > 0 && !values.force) {
    io.err(
      `kubeface: ${running.map((j) => j.job).join(", ")} ${
        running.length > 1 ? "are" : "is"
      } still running (updated within the last ${formatDuration(3 * 60_000)}); stop ${
        running.length > 1 ? "them" : "it"
      } first, or pass --force\n`,
    );
    return 1;
  }
  if (chosen.length === 0) {
    io.err(`kubeface: no job matches in ${storage.url}\n`);
    return 0;
  }
  const plan: string[] = [];
  for (const j of chosen) {
    const { objects, bytes } = await countObjects(storage, j.job);
    plan.push(
      `  ${j.job} (${j.state}): ${objects} object(s), ${(bytes / 2 ** 20).toFixed(1)} MiB${
        j.backend !== "local" ? `, and its ${j.backend} resources` : ""
      }`,
    );
  }
  io.err(
    `kubeface: will delete ${chosen.length} job(s) from ${storage.url}:\n${plan.join("\n")}\n`,
  );
  if (!values.yes) {
    const answer = await io.confirm("Delete them?");
    if (answer === undefined) {
      io.err("kubeface: nothing deleted; pass --yes to delete without a question\n");
      return 1;
    }
    if (!answer) {
      io.err("kubeface: nothing deleted\n");
      return 1;
    }
  }
  const options = applyBackendFlags(values, {});
  for (const j of chosen) {
    if (j.backend && j.backend !== "local") {
      const backend = await createBackend(j.backend, options);
      for (const line of await backend.cleanup(j.job)) io.err(`kubeface: ${line}\n`);
    }
    const deleted = await deleteJob(storage, j.job);
    io.err(`kubeface: deleted job ${j.job} (${deleted} object(s))\n`);
  }
  return 0;
}
