/**
 * The recipe every pinned binary of the test cluster is built with: a throwaway Go module under
 * the cache directory, `go build` with module mode, no workspace and a static build, and the
 * binaries moved into their cache directory only once the build succeeded, so a half-finished
 * build never looks cached.
 *
 * @module
 */

import { runCommand } from "./run_command.ts";

/** The environment of every `go` command: module mode, no workspace, a static build. */
const GO_ENV = { GOWORK: "off", GOFLAGS: "", CGO_ENABLED: "0" };

/**
 * Run `build` between two progress lines that name it and say how long it took.
 *
 * @param what What is built, e.g. `containerd v2.4.2`.
 * @param onProgress Receives the two lines.
 * @param build The build.
 */
export async function timed(
  what: string,
  onProgress: (line: string) => void,
  build: () => Promise<void>,
): Promise<void> {
  onProgress(`Building ${what} with go build (a cold build takes several minutes)`);
  const start = performance.now();
  await build();
  onProgress(`Built ${what} in ${((performance.now() - start) / 1000).toFixed(0)} s`);
}

/**
 * Whether every path is an existing file.
 *
 * @param paths Absolute paths.
 * @returns `false` as soon as one is missing.
 */
export async function allExist(paths: string[]): Promise<boolean> {
  for (const path of paths) {
    try {
      if (!(await Deno.stat(path)).isFile) return false;
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return false;
      throw error;
    }
  }
  return true;
}

/**
 * A fresh module directory on the cache's file system, so the binaries can be renamed into place.
 *
 * @param root The cache root.
 * @param what A word for the directory name, e.g. `k8s`.
 * @returns The directory; the caller removes it.
 */
export async function throwawayModule(root: string, what: string): Promise<string> {
  await Deno.mkdir(`${root}/cluster`, { recursive: true });
  return await Deno.makeTempDir({ dir: `${root}/cluster`, prefix: `build-${what}-` });
}

/**
 * A `tools.go` (build tag `tools`) that imports packages, so `go mod tidy` keeps them.
 *
 * @param packages Import paths.
 * @returns The file's text.
 */
export function toolsGo(packages: string[]): string {
  const imports = packages.map((pkg) => `  _ "${pkg}"`).join("\n");
  return `//go:build tools\npackage tools\nimport (\n${imports}\n)\n`;
}

/**
 * Download `path@version` into the module cache and return the text of its go.mod.
 *
 * @param cwd A module directory.
 * @param pathAtVersion E.g. `k8s.io/kubernetes@v1.35.4`.
 * @returns The go.mod text.
 * @throws {Error} When `go mod download` fails.
 */
export async function downloadGoMod(cwd: string, pathAtVersion: string): Promise<string> {
  const json = await go(cwd, ["mod", "download", "-json", pathAtVersion]);
  const { GoMod } = JSON.parse(json) as { GoMod?: string };
  if (!GoMod) throw new Error(`go mod download did not report a go.mod for ${pathAtVersion}`);
  return await Deno.readTextFile(GoMod);
}

/**
 * Run `go` niced, so a build leaves room for whatever else the machine runs.
 *
 * @param cwd The module directory.
 * @param args Arguments after `go`.
 * @param env More environment variables (e.g. `GOBIN`). @default {}
 * @returns Standard output.
 * @throws {Error} When `go` exits non-zero; the message carries the command and its stderr.
 */
export function go(
  cwd: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<string> {
  return runCommand("nice", {
    args: ["-n", "10", "go", ...args],
    cwd,
    env: { ...GO_ENV, ...env },
  });
}

/**
 * Move freshly built binaries into place.
 *
 * @param from The build output directory.
 * @param binDir The cache directory.
 * @param names File names to move.
 */
export async function install(from: string, binDir: string, names: string[]): Promise<void> {
  await Deno.mkdir(binDir, { recursive: true });
  for (const name of names) {
    await Deno.rename(`${from}/${name}`, `${binDir}/${name}`);
  }
}
