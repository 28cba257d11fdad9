/**
 * Build the worker image into the local image store of podman or docker,
 * offline: `deno task image:build`. The image is tagged with a hash of its
 * inputs (see `tag.ts`), and the build is skipped when that tag exists.
 *
 * ```sh
 * deno task image:build                      # podman if found, else docker
 * deno task image:build --cli docker --force # build again even if the tag exists
 * deno task image:build --context DIR        # only write the build context to DIR
 * ```
 *
 * It prints the image name on standard output, and progress on standard error.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { errorMessage } from "../errors.ts";
import {
  type ContainerCli,
  failed,
  findCli,
  imageExists,
  imageSize,
  runCli,
} from "../backends/container_cli.ts";
import { assembleContext } from "./context.ts";
import { projectRoot } from "../sources.ts";
import { defaultImage, imageInputsHash } from "./tag.ts";

const NOT_LOCAL =
  "Cannot build the worker image: kubeface does not run from local files; run it from a checkout";

/** Options of {@linkcode buildImage}. */
export interface BuildImageOptions {
  /**
   * The container CLI that builds and stores the image.
   *
   * @default {"podman" if found, else "docker"}
   */
  cli?: string;
  /**
   * Flags before the CLI's subcommand, e.g. `["--runtime", "runc"]`.
   *
   * @default {[]}
   */
  cliArgs?: readonly string[];
  /**
   * Image name to build.
   *
   * @default {defaultImage(), "kubeface-worker:<version>-<inputs hash>"}
   */
  image?: string;
  /**
   * Build even when the image already exists.
   *
   * @default {false}
   */
  force?: boolean;
  /**
   * Called with a line of progress.
   *
   * @default {() => {}}
   */
  onProgress?: (line: string) => void;
}

/** What {@linkcode buildImage} did. */
export interface BuildImageResult {
  /** The image name. */
  image: string;
  /** Whether it was built now (`false`: it existed). */
  built: boolean;
  /** Time taken, in milliseconds. */
  ms: number;
  /** Image size in bytes, when the CLI reports it. */
  bytes: number | undefined;
}

/**
 * Build the worker image unless it exists.
 *
 * @throws {BackendError} No container CLI, or the build failed.
 */
export async function buildImage(options: BuildImageOptions = {}): Promise<BuildImageResult> {
  const started = Date.now();
  const { force = false, onProgress = () => {} } = options;
  const root = projectRoot();
  if (root === undefined) throw new TypeError(NOT_LOCAL);
  const image = options.image ?? defaultImage(root);
  const cli: ContainerCli = {
    command: await findCli(options.cli),
    globalArgs: options.cliArgs ?? [],
  };
  if (!force && await imageExists(cli, image)) {
    onProgress(`${image} exists; nothing to build`);
    return { image, built: false, ms: Date.now() - started, bytes: await imageSize(cli, image) };
  }
  const dir = await Deno.makeTempDir({ prefix: "kubeface-image-" });
  try {
    onProgress(`assembling the build context in ${dir}`);
    const summary = await assembleContext(dir, { root });
    onProgress(
      `context: deno ${Deno.version.deno}, ${summary.libraries.length} libraries, ${summary.appFiles} app files`,
    );
    onProgress(`${cli.command} build --tag ${image}`);
    const { code, stderr } = await runCli(cli, [
      "build",
      "--tag",
      image,
      "--label",
      `kubeface.inputs=${imageInputsHash(root)}`,
      "--file",
      `${dir}/Dockerfile`,
      dir,
    ]);
    if (code !== 0) throw failed(cli, "build", stderr);
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  const bytes = await imageSize(cli, image);
  onProgress(`built ${image} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return { image, built: true, ms: Date.now() - started, bytes };
}

async function main(args: string[]): Promise<number> {
  // deno-lint-ignore no-console
  const log = (line: string) => console.error(`image: ${line}`);
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        cli: { type: "string" },
        image: { type: "string" },
        force: { type: "boolean", default: false },
        context: { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
  } catch (error) {
    log(errorMessage(error));
    return 2;
  }
  if (values.help) {
    log("usage: deno task image:build [--cli podman|docker] [--image NAME] [--force]");
    log("       deno task image:build --context DIR   (only write the build context)");
    return 0;
  }
  try {
    if (values.context) {
      await Deno.mkdir(values.context, { recursive: true });
      for await (const _ of Deno.readDir(values.context)) {
        log(
          `Cannot write the build context to '${values.context}': it is not empty; give a new or empty directory`,
        );
        return 1;
      }
      const root = projectRoot();
      if (root === undefined) throw new TypeError(NOT_LOCAL);
      await assembleContext(values.context, { root });
      // deno-lint-ignore no-console
      console.log(values.image ?? defaultImage());
      log(
        `context written to ${values.context}; build it with: docker build --tag ${
          values.image ?? defaultImage()
        } ${values.context}`,
      );
      return 0;
    }
    const result = await buildImage({
      cli: values.cli,
      image: values.image,
      force: values.force,
      onProgress: log,
    });
    // deno-lint-ignore no-console
    console.log(result.image);
    return 0;
  } catch (error) {
    log(errorMessage(error));
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
