/**
 * The terminal, as the command implementations see it. Only `cli.ts` makes
 * a real one; tests pass their own.
 *
 * @module
 */

/** Where a command writes and what it knows about the terminal. */
export interface Io {
  /** Write text, or bytes as they are, to standard output. */
  out(text: string | Uint8Array): void | Promise<void>;
  /** Write to standard error. */
  err(text: string): void;
  /** Standard error is a terminal (progress lines are drawn there). */
  isTerminal: boolean;
  /** Ask a yes/no question; `undefined` when nobody can answer. */
  confirm(question: string): Promise<boolean | undefined>;
  /** Register a handler of Ctrl-C and SIGTERM; returns a function that removes it. */
  onInterrupt(handler: () => void): () => void;
}

/**
 * A command-line mistake: an unknown flag, a missing or malformed value.
 * A command exits with `exitCode` (2) and shows its help.
 *
 * @example A job file that exits 2 on a mistake in kubeface's flags
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseKubefaceArgs, UsageError } from "@kubeface/kubeface";
 *
 * try {
 *   parseKubefaceArgs(["--parallelism", "many"]);
 *   assert.fail("a word is not a number");
 * } catch (error) {
 *   assert.ok(error instanceof UsageError);
 *   assert.equal(error.exitCode, 2);
 *   assert.equal(error.message, "--parallelism must be a whole number from 1 to 100000, not 'many'");
 *   // A job file would print the message and Deno.exit(error.exitCode).
 * }
 * ```
 */
export class UsageError extends Error {
  /** Exit status of a usage error. */
  readonly exitCode = 2;
  /** Build a usage error. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}
