/**
 * The docs' examples work as written from a project outside this
 * repository: a project next to a kubeface checkout maps it in its own
 * deno.json (README's entry, verbatim), holds README's task modules and job
 * file, and uses kubeface from a job file and from an installed command;
 * the JSDoc examples of the public API run there too.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { REPO_ROOT } from "./support/cli.ts";

const README = await Deno.readTextFile(join(REPO_ROOT, "README.md"));

/** The fenced blocks of README in a language. */
function blocks(language: string): string[] {
  return [...README.matchAll(new RegExp("```" + language + "\\n([\\s\\S]*?)```", "g"))]
    .map((m) => m[1]!);
}

/** README's TypeScript files: blocks whose first line is `// NAME.ts…`, by name. */
function readmeFiles(): Map<string, string> {
  const files = new Map<string, string>();
  for (const block of blocks("ts")) {
    const name = /^\/\/ (\w+\.ts)\b/.exec(block)?.[1];
    if (name) files.set(name, block);
  }
  return files;
}

/** README's deno.json entries, merged as a user would put them in one file. */
function readmeConfig(): { imports: Record<string, string> } {
  const imports: Record<string, string> = {};
  for (const block of blocks("json")) Object.assign(imports, JSON.parse(block).imports);
  return { imports };
}

/** The README has this command, character for character. */
function documented(command: string): string {
  assert.ok(README.includes(command), `README no longer shows: ${command}`);
  return command;
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function sh(command: string, cwd: string, env: Record<string, string>): Promise<Run> {
  const output = await new Deno.Command("sh", {
    args: ["-c", command],
    cwd,
    env: { NO_COLOR: "1", ...env },
  }).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: output.code, stdout: decode(output.stdout), stderr: decode(output.stderr) };
}

Deno.test("README's examples work as written from a project next to a kubeface checkout", async () => {
  const root = await Deno.makeTempDir({ prefix: "kubeface-readme-test-" });
  try {
    // The layout README assumes: the project, and a kubeface checkout next to it.
    await Deno.symlink(REPO_ROOT, join(root, "kubeface"));
    const project = join(root, "project");
    const elsewhere = join(root, "elsewhere");
    await Deno.mkdir(project);
    await Deno.mkdir(elsewhere);
    const config = readmeConfig();
    assert.equal(config.imports["@kubeface/kubeface"], "../kubeface/mod.ts");
    await Deno.writeTextFile(join(project, "deno.json"), JSON.stringify(config, null, 2));
    const files = readmeFiles();
    assert.deepEqual([...files.keys()].sort(), ["job.ts", "pi.ts", "slugs.ts", "squares.ts"]);
    for (const [name, text] of files) await Deno.writeTextFile(join(project, name), text);
    const env = {
      KUBEFACE_STORAGE: join(root, "storage"),
      PATH: `${join(root, "bin")}:${Deno.env.get("PATH")}`,
      HOME: Deno.env.get("HOME") ?? root,
    };

    // The long task of "Long tasks" is meant for a cluster: it must check as written.
    const pi = await sh("deno check pi.ts", project, env);
    assert.equal(pi.code, 0, pi.stderr);

    // The job file, from the project and from anywhere else.
    const job = await sh(documented("deno run -A job.ts"), project, env);
    assert.equal(job.code, 0, job.stderr);
    assert.match(job.stdout, /^job squares-\S+: the sum of the squares is 328350\n$/);
    const fromElsewhere = await sh(
      `deno run -A ${join(project, "job.ts")} --parallelism 8 --warm`,
      elsewhere,
      env,
    );
    assert.equal(fromElsewhere.code, 0, fromElsewhere.stderr);
    assert.match(fromElsewhere.stdout, /the sum of the squares is 328350/);

    // The command, installed from the checkout next to the project.
    const install = await sh(
      documented(
        "deno install --global --allow-all --config ../kubeface/deno.json --name kubeface ../kubeface/cli.ts",
      ).replace("--global", `--global --root ${root}`),
      project,
      env,
    );
    assert.equal(install.code, 0, install.stderr);
    const map = await sh(
      documented("kubeface map --module squares.ts --out results.jsonl"),
      project,
      env,
    );
    assert.equal(map.code, 0, map.stderr);
    const rows = (await Deno.readTextFile(join(project, "results.jsonl"))).trimEnd().split("\n");
    assert.equal(rows.length, 100);
    assert.deepEqual(JSON.parse(rows[7]!), { input: 7, result: 49 });
    const slugs = await sh(
      documented("kubeface map --module ~/project/slugs.ts").replace("~/project", project),
      elsewhere,
      env,
    );
    assert.equal(slugs.code, 0, slugs.stderr);
    assert.deepEqual(
      slugs.stdout.trimEnd().split("\n").map((line) => JSON.parse(line).result),
      ["hello-world", "a-parallel-map"],
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

/** The runnable examples of the public API's JSDoc: every ```ts block not marked ignore. */
function docExamples(): { where: string; code: string }[] {
  const files = ["mod.ts"];
  const walk = (dir: string) => {
    for (const entry of Deno.readDirSync(join(REPO_ROOT, dir))) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory) walk(path);
      else if (entry.name.endsWith(".ts")) files.push(path);
    }
  };
  walk("lib");
  const examples: { where: string; code: string }[] = [];
  for (const file of files.sort()) {
    const text = Deno.readTextFileSync(join(REPO_ROOT, file));
    for (const match of text.matchAll(/^\s*\* ```ts\n([\s\S]*?)^\s*\* ```/gm)) {
      const line = text.slice(0, match.index).split("\n").length + 1;
      const code = match[1]!.replace(/^\s*\*( |$)/gm, "");
      examples.push({ where: `${file}:${line}`, code });
    }
  }
  return examples;
}

Deno.test("the JSDoc examples of the public API work as written from a project next to a checkout", async () => {
  const root = await Deno.makeTempDir({ prefix: "kubeface-doc-test-" });
  try {
    await Deno.symlink(REPO_ROOT, join(root, "kubeface"));
    const project = join(root, "project");
    await Deno.mkdir(project);
    await Deno.writeTextFile(join(project, "deno.json"), JSON.stringify(readmeConfig(), null, 2));
    const examples = docExamples();
    assert.ok(examples.length >= 15, `only ${examples.length} examples found`);
    for (const [i, { where, code }] of examples.entries()) {
      assert.match(code, /from "@kubeface\/kubeface"/, `${where} imports kubeface as a user does`);
      await Deno.writeTextFile(join(project, `example_${i}.ts`), code);
      const r = await sh(`deno run -A example_${i}.ts`, project, {});
      assert.equal(r.code, 0, `the example at ${where} failed:\n${r.stderr}`);
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
