/**
 * `kubeface jobs`: the jobs in a storage root, newest first.
 *
 * @module
 */

import { type JobListing, listJobs } from "../catalog.ts";
import { helpText, parseFlags, STORAGE_FLAG, storageFrom } from "./flags.ts";
import type { Io } from "./io.ts";
import { ago, table } from "./table.ts";

/** Help of `kubeface jobs`. */
export const JOBS_HELP = helpText(
  "kubeface jobs [--all] [--storage URL]",
  "List the jobs in a storage root, newest first: state (preparing, running, stale, done,\nfailed, interrupted), progress and age. Without --all, done jobs are left out.\nA stale job's master stopped writing: rerun it with its key to resume it.",
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
  await using storage = await storageFrom(values);
  const warn = (message: string) => io.err(`kubeface: warning: ${message}\n`);
  const jobs = (await listJobs(storage, warn)).filter((j) => values.all || j.state !== "done");
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
