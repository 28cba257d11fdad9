/**
 * Resident memory of process sessions, read from /proc. The node agent starts each container
 * in its own session, so a session's RSS is the container's whole process tree.
 *
 * @module
 */

const PAGE_SIZE = 4096;

/**
 * Sum the resident set size of every process by session id.
 *
 * @returns A map from session id to bytes.
 */
export function rssBySession(): Map<number, number> {
  const totals = new Map<number, number>();
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    let stat: string;
    try {
      stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
    } catch {
      continue; // the process exited meanwhile
    }
    // Fields after "(comm)": state ppid pgrp session ... rss is field 24 of the whole line.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const session = Number(fields[3]);
    const rssPages = Number(fields[21]);
    if (!Number.isFinite(session) || !Number.isFinite(rssPages)) continue;
    totals.set(session, (totals.get(session) ?? 0) + rssPages * PAGE_SIZE);
  }
  return totals;
}
