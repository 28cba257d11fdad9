/**
 * Run a command to completion and fail with its output when it exits non-zero.
 *
 * @module
 */

/** Options of {@link runCommand}. */
export interface RunCommandOptions {
  /** Arguments after the program name. @default [] */
  args?: string[];
  /** Working directory. @default the current directory */
  cwd?: string;
  /** Extra environment variables (merged over the current environment). @default {} */
  env?: Record<string, string>;
}

/**
 * Run `program` and return its standard output as text.
 *
 * @param program The executable (looked up on PATH).
 * @param options Arguments, working directory and environment.
 * @returns The captured standard output.
 * @throws {Error} When the command exits non-zero; the message quotes the command and its stderr.
 */
export async function runCommand(
  program: string,
  options: RunCommandOptions = {},
): Promise<string> {
  const { args = [], cwd, env = {} } = options;
  const output = await new Deno.Command(program, {
    args,
    cwd,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(output.stdout);
  if (!output.success) {
    const stderr = new TextDecoder().decode(output.stderr).trim();
    throw new Error(
      `Command failed with exit code ${output.code}: ${program} ${args.join(" ")}\n${stderr}`,
    );
  }
  return stdout;
}
