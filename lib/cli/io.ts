/**
 * The terminal, as the command implementations see it. Only `cli.ts` makes
 * a real one; tests pass their own.
 *
 * @module
 */

/** Where a command writes and what it knows about the terminal. */
export interface Io {
  /** Write to standard output. */
  out(text: string): void | Promise<void>;
  /** Write to standard error. */
  err(text: string): void;
  /** Standard error is a terminal (progress lines are drawn there). */
  isTerminal: boolean;
  /** Ask a yes/no question; `undefined` when nobody can answer. */
  confirm(question: string): Promise<boolean | undefined>;
  /** Register a handler of Ctrl-C and SIGTERM; returns a function that removes it. */
  onInterrupt(handler: () => void): () => void;
}

/** A command-line mistake: exit status 2, and the subcommand's help. */
export class UsageError extends Error {
  /** Exit status of a usage error. */
  readonly exitCode = 2;
  /** Build a usage error. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}
