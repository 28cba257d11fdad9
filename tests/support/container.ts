/**
 * The container engine tests use: whether it and the worker image are here,
 * and finding and killing a job's containers as an outsider would.
 *
 * @module
 */

import { CONTAINER_CLIS } from "../../lib/backends/container_cli.ts";
import { defaultImage } from "../../lib/image/tag.ts";

function run(command: string, args: string[]): { code: number; stdout: string; stderr: string } {
  try {
    const out = new Deno.Command(command, { args, stdout: "piped", stderr: "piped" }).outputSync();
    const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
    return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
  } catch (error) {
    return { code: -1, stdout: "", stderr: String(error) };
  }
}

/** The container CLI tests use: `KUBEFACE_TEST_CONTAINER_CLI`, else podman, else docker. */
export function testCli(): string | undefined {
  const given = Deno.env.get("KUBEFACE_TEST_CONTAINER_CLI");
  if (given) return given;
  return CONTAINER_CLIS.find((cli) => run(cli, ["--version"]).code === 0);
}

let reason: string | null | undefined;

/**
 * Why the container backend cannot run here, or `undefined` when a CLI and
 * the worker image of the current sources are both there.
 */
export function containerUnavailable(): string | undefined {
  if (reason === undefined) {
    const cli = testCli();
    if (!cli) {
      reason = "neither podman nor docker is installed (apt-get install -y podman runc)";
    } else {
      const image = defaultImage();
      const inspect = run(cli, ["image", "inspect", "--format", "{{.Id}}", image]);
      reason = inspect.code === 0 ? null : /no such image|image not known|not found/i.test(
          inspect.stderr,
        )
        ? `the worker image ${image} is not built; run \`deno task image:build\` (\`deno task test\` builds it)`
        : `'${cli} image inspect' failed: ${inspect.stderr.trim()}`;
    }
  }
  return reason ?? undefined;
}

/** Names of a job's containers, running or not, optionally of one task. */
export function containersOf(job: string, task?: number): string[] {
  const filters = ["--filter", `label=kubeface.job=${job}`];
  if (task !== undefined) filters.push("--filter", `label=kubeface.task=${task}`);
  const out = run(testCli()!, ["ps", "--all", ...filters, "--format", "{{.Names}}"]);
  return out.stdout.split("\n").map((s) => s.trim()).filter(Boolean);
}

/** Kill a container from outside, as a user or the OOM killer would. */
export function killContainer(name: string): void {
  const out = run(testCli()!, ["kill", name]);
  if (out.code !== 0) throw new Error(`could not kill container ${name}: ${out.stderr}`);
}
