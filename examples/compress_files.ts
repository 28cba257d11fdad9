/**
 * Compress every file of a directory with the `gzip` command, one task per
 * file: files travel to the tasks and back through storage, never whole in
 * the master's memory.
 *
 * ```sh
 * DIR=./my-files deno run -A cli.ts map --module examples/compress_files.ts \
 *   --allow-run=gzip --out-dir compressed
 * ```
 *
 * Each row names the compressed file written under `compressed/<index>/`.
 *
 * @module
 */

import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { file, type FileRef, type InputFile } from "../lib/task.ts";

/** The files of `$DIR` (default: this directory), read on the master. */
export function inputs(): FileRef[] {
  const dir = Deno.env.get("DIR") ?? fileURLToPath(new URL(".", import.meta.url));
  return [...Deno.readDirSync(dir)]
    .filter((entry) => entry.isFile)
    .map((entry) => file(join(dir, entry.name)))
    .sort((a, b) => a.path.localeCompare(b.path));
}

/** Compress one file with gzip, next to its local copy in the scratch directory. */
export async function task(input: InputFile): Promise<FileRef> {
  const { code, stderr } = await new Deno.Command("gzip", {
    args: ["--keep", "--no-name", "--force", input.path],
    stderr: "piped",
  }).output();
  if (code !== 0) {
    throw new Error(`gzip ${input.name} failed: ${new TextDecoder().decode(stderr).trim()}`);
  }
  return file(`${input.path}.gz`);
}
