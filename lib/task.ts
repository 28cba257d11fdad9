/**
 * What a task module may import from kubeface: `file`, to return a file it
 * wrote, and the types of what a task gets. It depends on nothing else, so a
 * task's bundle stays small (importing `mod.ts` would bundle the whole
 * client).
 *
 * ```ts ignore
 * import { file, type InputFile } from "kubeface/lib/task.ts";
 *
 * export async function task(input: InputFile): Promise<unknown> {
 *   const out = `${input.path}.gz`;
 *   const { stdout } = await new Deno.Command("gzip", { args: ["-c", input.path], stdout: "piped" })
 *     .output();
 *   await Deno.writeFile(out, stdout);
 *   return file(out);
 * }
 * ```
 *
 * @module
 */

export { file, FileRef, type InputFile } from "./files.ts";
export type { TaskContext } from "./task_context.ts";
