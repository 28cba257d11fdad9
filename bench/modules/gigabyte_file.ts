/**
 * The data-path task with files: one input file (`$KUBEFACE_BENCH_FILE`,
 * written by the benchmark), copied with its first byte flipped and returned
 * as a file, so input and result are both that big and neither is ever held
 * in memory.
 *
 * @module
 */

import { file, type FileRef, type InputFile } from "../../lib/task.ts";

/** The one input file; a function, so only the master reads the variable. */
export function inputs(): FileRef[] {
  return [file(Deno.env.get("KUBEFACE_BENCH_FILE")!)];
}

/** Copy the file next to itself (in the scratch directory), flip its first byte, return the copy. */
export async function task(input: InputFile): Promise<FileRef> {
  const out = `${input.path}.out`;
  await Deno.copyFile(input.path, out);
  using copy = await Deno.open(out, { read: true, write: true });
  const first = new Uint8Array(1);
  if ((await copy.read(first)) === 1) {
    first[0] = first[0]! ^ 1;
    await copy.seek(0, Deno.SeekMode.Start);
    await copy.write(first);
  }
  return file(out);
}
