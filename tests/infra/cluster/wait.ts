/**
 * Poll until a component answers, failing early when its process died.
 *
 * @module
 */

import { delay, isAlive } from "./processes.ts";

/** Options of {@link waitUntil}. */
export interface WaitOptions {
  /** Give up after this many milliseconds. */
  timeoutMs: number;
  /** The process whose death ends the wait early. */
  pid?: number;
  /** Its log file, whose tail goes into the error. */
  logFile?: string;
  /** Poll interval. @default 250 */
  intervalMs?: number;
}

/**
 * Call `check` until it returns `true`.
 *
 * @param what What is awaited, for the error message (e.g. "kube-apiserver /readyz").
 * @param check Returns `true` when ready; a thrown error counts as not ready.
 * @param options Timeout, the process to watch and its log.
 * @throws {Error} When the time is up or the process died; the message ends with the log tail.
 */
export async function waitUntil(
  what: string,
  check: () => Promise<boolean>,
  options: WaitOptions,
): Promise<void> {
  const { timeoutMs, pid, logFile, intervalMs = 250 } = options;
  const deadline = Date.now() + timeoutMs;
  let lastError = "";
  while (true) {
    try {
      if (await check()) return;
    } catch (error) {
      lastError = error instanceof Error ? error.message : String(error);
    }
    if (pid !== undefined && !isAlive(pid)) {
      throw new Error(`Cannot start ${what}: the process exited${await logTail(logFile)}`);
    }
    if (Date.now() > deadline) {
      const last = lastError ? ` (last error: ${lastError})` : "";
      throw new Error(
        `Timed out after ${timeoutMs / 1000} s waiting for ${what}${last}${await logTail(logFile)}`,
      );
    }
    await delay(intervalMs);
  }
}

/**
 * The last lines of a log file, formatted for an error message.
 *
 * @param logFile The file, or `undefined`.
 * @param lines How many lines.
 * @returns An empty string, or a newline, a header and the lines.
 */
export async function logTail(logFile: string | undefined, lines = 30): Promise<string> {
  if (!logFile) return "";
  try {
    const text = await Deno.readTextFile(logFile);
    const tail = text.trimEnd().split("\n").slice(-lines).join("\n");
    return `\n--- last ${lines} lines of ${logFile} ---\n${tail}`;
  } catch {
    return "";
  }
}
