/**
 * `kubeface status`: one job's status, as text, as JSON, or served as its
 * HTML page.
 *
 * @module
 */

import { NotFoundError } from "../errors.ts";
import { readStatus, stateOf } from "../catalog.ts";
import type { Storage } from "../storage/storage.ts";
import { serveStatus, type StatusServer } from "../status/serve.ts";
import type { JobStatus } from "../format/status.ts";
import { type FlagSpec, helpText, int, parseFlags, STORAGE_FLAG, storageFrom } from "./flags.ts";
import { type Io, UsageError } from "./io.ts";
import { formatDuration } from "./progress.ts";
import { ago } from "./table.ts";

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
          t.checkpointAt ? `, last checkpoint ${ago(t.checkpointAt, now)}` : ""
        }${a?.detail ? ` (${a.detail})` : ""}`,
      );
    }
    if (running.length > 20) lines.push(`  … and ${running.length - 20} more`);
  }
  lines.push(...checkpointLines(status, now));
  return lines.join("\n") + "\n";
}

/** Unfinished tasks that are not running and have a checkpoint: a rerun resumes them from it. */
function checkpointLines(status: JobStatus, now: number): string[] {
  const waiting = status.tasks.filter((t) => t.checkpointAt && t.phase !== "running");
  if (waiting.length === 0) return [];
  const lines = [
    `Checkpoints (${waiting.length} unfinished task(s) resume from them when the job runs again):`,
  ];
  for (const t of waiting.slice(0, 20)) {
    lines.push(
      `  task ${t.task}: last checkpoint ${t.checkpointAt} (${ago(t.checkpointAt!, now)})`,
    );
  }
  if (waiting.length > 20) lines.push(`  … and ${waiting.length - 20} more`);
  return lines;
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
  await using storage = await storageFrom(values);
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
