/**
 * A task module is bundled with the configuration of the project it
 * belongs to (the nearest deno.json, deno.jsonc or package.json above it,
 * its import map and its lock file), as `deno run` of the module would use
 * it: from any working directory, from an installed `kubeface`, and unless
 * `--config` (the `config` option) names another. The master loads the
 * bundle too, so `inputs` resolve the project's imports as well.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { Client, TaskModuleError } from "../mod.ts";
import { type CliResult, kubeface, REPO_ROOT } from "./support/cli.ts";
import { collect } from "./support/jobs.ts";

/** A task module that uses a bare import in its task and in its inputs. */
const SLUGS = `import { kebabCase } from "cc";

export function inputs(): string[] {
  return ["Hello World", "fooBar"].map((title) => kebabCase(title) + " " + title);
}
export function task(line: string): string {
  return kebabCase(line);
}
`;
const SLUG_RESULTS = [
  { input: "hello-world Hello World", result: "hello-world-hello-world" },
  { input: "foo-bar fooBar", result: "foo-bar-foo-bar" },
];

/** Temporary directories: a project, a storage and somewhere else to run from. */
async function withDirs(
  fn: (dirs: { project: string; storage: string; elsewhere: string }) => Promise<void>,
): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "kubeface-project-test-" });
  try {
    const dirs = {
      project: join(root, "project"),
      storage: join(root, "storage"),
      elsewhere: join(root, "elsewhere"),
    };
    await Deno.mkdir(join(dirs.project, "tasks"), { recursive: true });
    await Deno.mkdir(dirs.elsewhere);
    await fn(dirs);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

function rows(r: CliResult): unknown[] {
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trimEnd().split("\n").map((line) => JSON.parse(line));
}

const CC_IMPORTS = { imports: { cc: "npm:change-case@5.4.4" } };

Deno.test("a module's bare imports resolve with its project's deno.json, from any directory", async () => {
  await withDirs(async ({ project, storage, elsewhere }) => {
    await Deno.writeTextFile(join(project, "deno.json"), JSON.stringify(CC_IMPORTS));
    // A module below the project root: the nearest deno.json above it applies.
    const module = join(project, "tasks", "slugs.ts");
    await Deno.writeTextFile(module, SLUGS);
    const args = ["map", "-m", module, "--storage", storage, "-q"];
    assert.deepEqual(rows(await kubeface(args, { cwd: elsewhere })), SLUG_RESULTS);
    assert.deepEqual(
      rows(
        await kubeface(["map", "-m", "tasks/slugs.ts", "--storage", storage, "-q"], {
          cwd: project,
        }),
      ),
      SLUG_RESULTS,
    );
  });
});

Deno.test("a module is bundled with its project's lock file", async () => {
  await withDirs(async ({ project, storage, elsewhere }) => {
    const config = join(project, "deno.json");
    const lock = join(project, "deno.lock");
    const module = join(project, "slugs.ts");
    await Deno.writeTextFile(module, SLUGS);
    const map = () =>
      kubeface(["map", "-m", module, "--storage", storage, "-q"], { cwd: elsewhere });
    await Deno.writeTextFile(config, JSON.stringify(CC_IMPORTS));
    assert.deepEqual(rows(await map()), SLUG_RESULTS);
    assert.match(await Deno.readTextFile(lock), /"npm:change-case@5\.4\.4"/, "it wrote the lock");
    await Deno.writeTextFile(config, JSON.stringify({ ...CC_IMPORTS, lock: { frozen: true } }));
    assert.deepEqual(rows(await map()), SLUG_RESULTS, "the frozen lock file has every package");
    await Deno.writeTextFile(lock, '{ "version": "5" }\n');
    const stale = await map();
    assert.equal(stale.code, 1);
    assert.match(stale.stderr, /The lockfile is out of date/, "it read the lock file");
  });
});

Deno.test("a module of a package.json project is bundled with its dependencies", async () => {
  await withDirs(async ({ project, storage, elsewhere }) => {
    await Deno.writeTextFile(
      join(project, "package.json"),
      JSON.stringify({ name: "p", type: "module", dependencies: { "change-case": "5.4.4" } }),
    );
    const install = await new Deno.Command(Deno.execPath(), {
      args: ["install", "--quiet"],
      cwd: project,
      env: { NO_COLOR: "1" },
    }).output();
    assert.equal(install.code, 0, new TextDecoder().decode(install.stderr));
    const module = join(project, "slugs.ts");
    await Deno.writeTextFile(module, SLUGS.replace('"cc"', '"change-case"'));
    const r = await kubeface(["map", "-m", module, "--storage", storage, "-q"], { cwd: elsewhere });
    assert.deepEqual(rows(r), SLUG_RESULTS);
  });
});

Deno.test("--config bundles with another deno.json, and a failure names the one used", async () => {
  await withDirs(async ({ project, storage, elsewhere }) => {
    await Deno.writeTextFile(join(project, "deno.json"), "{}\n");
    const other = join(elsewhere, "other.json");
    await Deno.writeTextFile(other, JSON.stringify(CC_IMPORTS));
    const module = join(project, "slugs.ts");
    await Deno.writeTextFile(module, SLUGS);
    const nearest = await kubeface(["map", "-m", module, "--storage", storage, "-q"], {
      cwd: elsewhere,
    });
    assert.equal(nearest.code, 1);
    assert.match(
      nearest.stderr,
      new RegExp(
        `^kubeface: Cannot bundle task module 'file://${module}' with deno bundle \\(using the configuration ${
          join(project, "deno.json")
        }, the nearest above the module; pass --config or the config option to use another\\)\n {4}error: Import "cc" not a dependency`,
      ),
    );
    const given = await kubeface(
      ["map", "-m", module, "--config", "other.json", "--storage", storage, "-q"],
      { cwd: elsewhere },
    );
    assert.deepEqual(rows(given), SLUG_RESULTS);

    // The API's config option.
    const run = new Client({ storage }).map<string, string>(module, { config: other });
    assert.deepEqual(await collect(run), SLUG_RESULTS.map((r) => r.result));
    const failed = await collect(new Client({ storage }).map(module)).catch((e) => e);
    assert.ok(failed instanceof TaskModuleError, `expected a TaskModuleError, got ${failed}`);
    assert.equal(failed.stage, "bundle");
    assert.match(failed.userStack, /Import "cc" not a dependency/);
  });
});

Deno.test("an installed kubeface bundles a module with the module's own project configuration", async () => {
  await withDirs(async ({ project, storage, elsewhere }) => {
    const root = join(elsewhere, "install");
    const install = await new Deno.Command(Deno.execPath(), {
      args: [
        "install",
        "--global",
        "--quiet",
        "--root",
        root,
        "--allow-all",
        "--config",
        join(REPO_ROOT, "deno.json"),
        "--name",
        "kubeface",
        join(REPO_ROOT, "cli.ts"),
      ],
      env: { NO_COLOR: "1" },
    }).output();
    assert.equal(install.code, 0, new TextDecoder().decode(install.stderr));
    await Deno.writeTextFile(join(project, "deno.json"), JSON.stringify(CC_IMPORTS));
    await Deno.writeTextFile(join(project, "slugs.ts"), SLUGS);
    for (const [cwd, module] of [[project, "slugs.ts"], [elsewhere, join(project, "slugs.ts")]]) {
      const output = await new Deno.Command(join(root, "bin", "kubeface"), {
        args: ["map", "-m", module!, "--storage", storage, "-q"],
        cwd,
        env: { NO_COLOR: "1" },
      }).output();
      const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
      assert.deepEqual(
        rows({ code: output.code, stdout: decode(output.stdout), stderr: decode(output.stderr) }),
        SLUG_RESULTS,
        `run from ${cwd}`,
      );
    }
  });
});
