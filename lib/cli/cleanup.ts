/**
 * `kubeface cleanup`: delete jobs, their objects in storage and what their
 * backend keeps.
 *
 * @module
 */

import { createBackend } from "../backends/select.ts";
import type { Backend } from "../backends/backend.ts";
import { countObjects, deleteJob, type JobListing, listJobs } from "../catalog.ts";
import { applyBackendFlags, backendFlags, backendHelpGroups } from "./backend_flags.ts";
import {
  duration,
  type FlagSpec,
  helpText,
  parseFlags,
  STORAGE_FLAG,
  storageFrom,
} from "./flags.ts";
import { type Io, UsageError } from "./io.ts";
import { formatDuration } from "./progress.ts";

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

/** A job to delete, and the backend it ran on when that is known. */
type Doomed = Pick<JobListing, "job" | "state"> & { backend?: string; backendObject?: Backend };

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
  await using storage = await storageFrom(values);
  const all = await listJobs(storage, (message) => io.err(`kubeface: warning: ${message}\n`));
  const now = Date.now();
  const chosen: Doomed[] = all.filter((j) =>
    positionals.includes(j.job) ||
    (values.done === true && j.state === "done") ||
    (olderThan !== undefined && now - Date.parse(j.updatedAt) > olderThan)
  );
  for (const key of positionals) {
    if (!all.some((j) => j.job === key) && (await countObjects(storage, key)).objects === 0) {
      io.err(`kubeface: no job '${key}' in ${storage.url}\n`);
      return 1;
    }
    // Objects without a summary: a master died before it wrote one; its backend is unknown.
    if (!chosen.some((j) => j.job === key)) chosen.push({ job: key, state: "interrupted" });
  }
  const running = chosen.filter((j) => j.state === "running" || j.state === "preparing");
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
  const options = applyBackendFlags(values, {});
  const plan: string[] = [];
  for (const j of chosen) {
    j.backendObject = j.backend ? await createBackend(j.backend, options) : undefined;
    const { objects, bytes, checkpoints } = await countObjects(storage, j.job);
    const kept = j.backendObject?.keepsRunning;
    plan.push(
      `  ${j.job} (${j.state}): ${objects} object(s), ${(bytes / 2 ** 20).toFixed(1)} MiB${
        checkpoints ? ` (${checkpoints} checkpoint(s) of unfinished tasks)` : ""
      }${kept ? `, and its ${kept}` : ""}`,
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
  for (const j of chosen) {
    for (const line of await j.backendObject?.cleanup(j.job) ?? []) io.err(`kubeface: ${line}\n`);
    const deleted = await deleteJob(storage, j.job);
    io.err(`kubeface: deleted job ${j.job} (${deleted} object(s))\n`);
  }
  return 0;
}
