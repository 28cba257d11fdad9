/**
 * `kubeface logs`: what a job's workers printed, from storage or, for
 * workers that do not store their logs, from the backend (pod logs).
 *
 * @module
 */

import { createBackend } from "../backends/select.ts";
import { readStatus } from "../catalog.ts";
import { JobLayout } from "../format/layout.ts";
import type { Storage } from "../storage/storage.ts";
import { applyBackendFlags, backendFlags, backendHelpGroups } from "./backend_flags.ts";
import { type FlagValues, helpText, parseFlags, STORAGE_FLAG, storageFrom } from "./flags.ts";
import { type Io, UsageError } from "./io.ts";

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
  await using storage = await storageFrom(values);
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
    for await (const log of backend?.logs?.(storage, key, task) ?? []) {
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
