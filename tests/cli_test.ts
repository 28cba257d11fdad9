/**
 * The `kubeface` command as a user runs it (local backend, local storage).
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { assertSnapshot, kubeface, REPO_ROOT } from "./support/cli.ts";
import { example, fixture } from "./support/jobs.ts";

async function withStorage(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "kubeface-cli-test-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("kubeface map --out writes one {input, result} line per input, in order", async () => {
  await withStorage(async (dir) => {
    const out = join(dir, "r.jsonl");
    const r = await kubeface([
      "map",
      "--module",
      example("squares.ts"),
      "--storage",
      join(dir, "s"),
      "--out",
      out,
    ]);
    assert.equal(r.code, 0, r.stderr);
    const lines = (await Deno.readTextFile(out)).trimEnd().split("\n");
    assert.equal(lines.length, 100);
    lines.forEach((line, i) => assert.deepEqual(JSON.parse(line), { input: i, result: i * i }));
    assert.match(
      r.stderr,
      /kubeface: job squares-\d{8}-\d{6}-\w{4}: 100 task\(s\) for 100 input\(s\)/,
    );
    assert.match(r.stderr, /kubeface: status file:\/\/.*\/status\.html/);
    assert.equal(r.stdout, "");
  });
});

Deno.test("kubeface map writes to standard output, and --quiet prints nothing else", async () => {
  await withStorage(async (dir) => {
    const r = await kubeface(["map", "-m", fixture("half.ts"), "--storage", dir, "--quiet"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, "");
    assert.deepEqual(
      r.stdout.trimEnd().split("\n").map((l) => JSON.parse(l)),
      [1, 2, 3, 4, 5, 6, 7, 8, 9].map((x) => ({ input: x, result: 2 / x })),
    );
  });
});

Deno.test("kubeface map reads the storage and backend from the environment", async () => {
  await withStorage(async (dir) => {
    const r = await kubeface(["map", "-m", fixture("half.ts"), "-q"], {
      env: { KUBEFACE_STORAGE: dir, KUBEFACE_BACKEND: "local" },
    });
    assert.equal(r.code, 0, r.stderr);
    const jobs = [...Deno.readDirSync(join(dir, "jobs"))];
    assert.equal(jobs.length, 1);
    const bad = await kubeface(["map", "-m", fixture("half.ts"), "-q"], {
      env: { KUBEFACE_STORAGE: dir, KUBEFACE_BACKEND: "nowhere" },
    });
    assert.equal(bad.code, 2);
    assert.match(
      bad.stderr,
      /Cannot use backend 'nowhere': choose one of local, container, kubernetes/,
    );
  });
});

Deno.test("kubeface map exits 1 with the task's index and error when a task throws", async () => {
  await withStorage(async (dir) => {
    const out = join(dir, "r.jsonl");
    const r = await kubeface([
      "map",
      "-m",
      fixture("throws.ts"),
      "--storage",
      dir,
      "--out",
      out,
      "-q",
    ]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^kubeface: Task 3 \(input 3\) threw TypeError: cannot handle 3\n/);
    assert.match(r.stderr, /at task \(file:\/\/.*throws\.ts:\d+:\d+\)/, "the remote stack follows");
    await assert.rejects(Deno.stat(out), Deno.errors.NotFound, "no half-written output");
    await assert.rejects(Deno.stat(`${out}.partial`), Deno.errors.NotFound);
  });
});

Deno.test("kubeface map exits 1 naming the missing export", async () => {
  await withStorage(async (dir) => {
    const r = await kubeface(["map", "-m", fixture("no_task.ts"), "--storage", dir, "-q"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^kubeface: Task module '.*no_task\.ts' does not export 'task'/);
  });
});

Deno.test("kubeface map exits 2 with its help on a bad flag, a missing module or a bad number", async () => {
  const unknown = await kubeface(["map", "--modul", "x.ts"]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /^kubeface map: Unknown option '--modul'/);
  assert.match(unknown.stderr, /Usage: kubeface map --module FILE/);
  const missing = await kubeface(["map"]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /^kubeface map: --module is required/);
  const zero = await kubeface(["map", "-m", "x.ts", "--parallelism", "0"]);
  assert.equal(zero.code, 2);
  assert.match(
    zero.stderr,
    /^kubeface map: --parallelism must be a whole number from 1 to 100000, not '0'/,
  );
  const word = await kubeface(["map", "-m", "x.ts", "--timeout", "soon"]);
  assert.equal(word.code, 2);
  assert.match(
    word.stderr,
    /--timeout must be a duration such as 500ms, 90s, 30m, 2h or 7d, not 'soon'/,
  );
});

Deno.test("kubeface run --expression maps an expression and writes CSV", async () => {
  await withStorage(async (dir) => {
    const r = await kubeface([
      "run",
      "--expression",
      "value ** 2",
      "--inputs-expression",
      "Array.from({length: 4}, (_, i) => i)",
      "--format",
      "csv",
      "--storage",
      dir,
      "-q",
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "input,result\n0,0\n1,1\n2,4\n3,9\n");
  });
});

Deno.test("kubeface run --shell-command runs the command per input, quoted", async () => {
  await withStorage(async (dir) => {
    const r = await kubeface([
      "run",
      "--shell-command",
      "printf '%s!' {}",
      "--inputs-expression",
      `["a b", "it's", "$HOME"]`,
      "--storage",
      dir,
      "-q",
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      r.stdout.trimEnd().split("\n").map((l) => JSON.parse(l).result),
      ["a b!", "it's!", "$HOME!"],
    );
  });
});

Deno.test("kubeface run needs exactly one of --expression and --shell-command", async () => {
  const r = await kubeface(["run", "--inputs-expression", "[1]"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /give exactly one of --expression and --shell-command/);
});

for (
  const args of [
    ["--help"],
    ...["map", "run", "jobs", "status", "logs", "cat", "cp", "cleanup"].map((c) => [c, "--help"]),
  ]
) {
  Deno.test(`kubeface ${args.join(" ")} matches its snapshot`, async () => {
    const r = await kubeface(args);
    assert.equal(r.code, 0);
    await assertSnapshot(`help_${args.length === 1 ? "main" : args[0]}.txt`, r.stdout);
  });
}

Deno.test("kubeface jobs lists unfinished jobs, and every job with --all", async () => {
  await withStorage(async (dir) => {
    await kubeface(["map", "-m", fixture("half.ts"), "--storage", dir, "--job", "ok-1", "-q"]);
    await kubeface(["map", "-m", fixture("throws.ts"), "--storage", dir, "--job", "bad-1", "-q"]);
    const some = await kubeface(["jobs", "--storage", dir]);
    assert.equal(some.code, 0, some.stderr);
    assert.match(some.stdout, /^JOB\s+STATE\s+PROGRESS\s+FAILED\s+BACKEND\s+STARTED\s+UPDATED\n/);
    assert.match(some.stdout, /\nbad-1\s+failed\s+0\/6\s+1\s+local\s+[\d.]+s ago\s+[\d.]+s ago\n$/);
    assert.doesNotMatch(some.stdout, /ok-1/);
    const all = await kubeface(["jobs", "--all", "--storage", dir]);
    assert.match(all.stdout, /\nok-1\s+done\s+9\/9\s+0\s+local\s/);
    const none = await kubeface(["jobs", "--storage", join(dir, "empty")]);
    assert.match(none.stdout, /^No unfinished jobs in file:\/\//);
  });
});

Deno.test("kubeface status prints counts and failures, or the page as JSON", async () => {
  await withStorage(async (dir) => {
    await kubeface(["map", "-m", fixture("throws.ts"), "--storage", dir, "--job", "bad-2", "-q"]);
    const text = await kubeface(["status", "bad-2", "--storage", dir]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^Job bad-2: failed\n/);
    assert.match(
      text.stdout,
      /6 task\(s\) for 6 input\(s\): 0 done \(0 reused\), 0 running, 5 pending, 1 failed/,
    );
    assert.match(
      text.stdout,
      /Failed tasks:\n {2}task 3: Task 3 \(input 3\) threw TypeError: cannot handle 3\n/,
    );
    const json = await kubeface(["status", "bad-2", "--json", "--storage", dir]);
    const page = JSON.parse(json.stdout);
    assert.equal(page.job, "bad-2");
    assert.equal(page.phase, "failed");
    assert.equal(page.tasks[3].attempts[0].outcome, "task-error");
    const missing = await kubeface(["status", "nope", "--storage", dir]);
    assert.equal(missing.code, 1);
    assert.match(
      missing.stderr,
      /no job 'nope' in file:\/\/.*; list the jobs there with kubeface jobs --all/,
    );
  });
});

Deno.test("kubeface cat decodes results and errors; kubeface cp copies objects and prefixes", async () => {
  await withStorage(async (dir) => {
    const storage = join(dir, "s");
    await kubeface(["map", "-m", fixture("throws.ts"), "--storage", storage, "--job", "c-1", "-q"]);
    const errors = [...Deno.readDirSync(join(storage, "jobs/c-1/results/3"))];
    const error = await kubeface(["cat", join(storage, "jobs/c-1/results/3", errors[0]!.name)]);
    assert.equal(error.code, 0, error.stderr);
    assert.match(error.stdout, /"status": "error"/);
    assert.match(
      error.stdout,
      /\n\nTypeError: cannot handle 3\n {4}at task \(file:\/\/.*throws\.ts/,
    );

    await kubeface([
      "run",
      "-e",
      "new Map([[value, 2n ** 70n]])",
      "-i",
      "[1]",
      "--storage",
      storage,
      "--job",
      "c-2",
      "-q",
    ]);
    const [ok] = [...Deno.readDirSync(join(storage, "jobs/c-2/results/0"))];
    const copy = join(dir, "copy.ok");
    const cp = await kubeface([
      "cp",
      `file://${join(storage, "jobs/c-2/results/0", ok!.name)}`,
      copy,
    ]);
    assert.equal(cp.code, 0, cp.stderr);
    const value = await kubeface(["cat", copy]);
    assert.deepEqual(JSON.parse(value.stdout).value, [[1, "1180591620717411303424"]]);

    const tree = await kubeface(["cp", `${join(storage, "jobs/c-2")}/`, `${join(dir, "tree")}/`]);
    assert.equal(tree.code, 0, tree.stderr);
    assert.match(tree.stderr, /copied \d+ object\(s\)/);
    assert.ok(Deno.statSync(join(dir, "tree/manifest.json")).isFile);
    const plain = await kubeface(["cat", join(dir, "tree/manifest.json")]);
    assert.equal(JSON.parse(plain.stdout).key, "c-2");
  });
});

Deno.test("kubeface cleanup says what it deletes, asks, and deletes only with consent", async () => {
  await withStorage(async (dir) => {
    await kubeface(["map", "-m", fixture("half.ts"), "--storage", dir, "--job", "gone-1", "-q"]);
    await kubeface(["map", "-m", fixture("throws.ts"), "--storage", dir, "--job", "kept-1", "-q"]);
    const noTty = await kubeface(["cleanup", "--done", "--storage", dir]);
    assert.equal(noTty.code, 1);
    assert.match(
      noTty.stderr,
      /will delete 1 job\(s\) from .*:\n {2}gone-1 \(done\): \d+ object\(s\)/,
    );
    assert.match(noTty.stderr, /nothing deleted; pass --yes/);
    assert.ok(Deno.statSync(join(dir, "jobs/gone-1/manifest.json")).isFile);
    const yes = await kubeface(["cleanup", "--done", "--yes", "--storage", dir]);
    assert.equal(yes.code, 0, yes.stderr);
    assert.match(yes.stderr, /deleted job gone-1 \(\d+ object\(s\)\)/);
    await assert.rejects(Deno.stat(join(dir, "jobs/gone-1")), Deno.errors.NotFound);
    await assert.rejects(Deno.stat(join(dir, "index/gone-1.json")), Deno.errors.NotFound);
    assert.ok(Deno.statSync(join(dir, "jobs/kept-1/manifest.json")).isFile, "other jobs stay");
    const byKey = await kubeface(["cleanup", "kept-1", "-y", "--storage", dir]);
    assert.equal(byKey.code, 0, byKey.stderr);
    await assert.rejects(Deno.stat(join(dir, "jobs/kept-1")), Deno.errors.NotFound);
    const unknown = await kubeface(["cleanup", "never-was", "-y", "--storage", dir]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no job 'never-was'/);
  });
});

Deno.test("kubeface logs prints what each attempt of a task printed", async () => {
  await withStorage(async (dir) => {
    await kubeface([
      "run",
      "-e",
      "(console.log('hello from', value), value)",
      "-i",
      "[5, 6]",
      "--storage",
      dir,
      "--job",
      "l-1",
      "-q",
    ]);
    const one = await kubeface(["logs", "l-1", "1", "--storage", dir]);
    assert.equal(one.code, 0, one.stderr);
    assert.match(one.stdout, /^==> task 1, attempt [\w-]+ <==\nhello from 6\n$/);
    const all = await kubeface(["logs", "l-1", "--storage", dir]);
    assert.match(all.stdout, /hello from 5\n[\s\S]*hello from 6\n/);
  });
});

/** A colour code (SGR escape sequence). */
// deno-lint-ignore no-control-regex
const COLOUR = /\x1b\[[0-9;]*m/;

/** A stack frame or path of kubeface's own sources. */
const KUBEFACE_FRAME = new RegExp(`${REPO_ROOT.replaceAll("/", "\\/")}(lib\\/|cli\\.ts|mod\\.ts)`);

Deno.test("kubeface cp SRC - writes the object to standard output as it is", async () => {
  await withStorage(async (dir) => {
    await kubeface(["map", "-m", fixture("half.ts"), "--storage", dir, "--job", "o-1", "-q"]);
    const manifest = join(dir, "jobs/o-1/manifest.json");
    const r = await kubeface(["cp", manifest, "-"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, await Deno.readTextFile(manifest));
    assert.equal(r.stderr, "");
    await assert.rejects(Deno.stat(join(REPO_ROOT, "-")), Deno.errors.NotFound, "no file named -");
  });
});

Deno.test("kubeface cp of a source that does not exist exits 1 saying so", async () => {
  await withStorage(async (dir) => {
    const object = await kubeface(["cp", join(dir, "nothing.json"), join(dir, "copy.json")]);
    assert.equal(object.code, 1);
    assert.match(
      object.stderr,
      /^kubeface: Cannot copy '.*nothing\.json': there is no such object \(nor a directory or prefix\)\n$/,
    );
    const prefix = await kubeface(["cp", `${join(dir, "jobs/none")}/`, `${join(dir, "copy")}/`]);
    assert.equal(prefix.code, 1);
    assert.match(
      prefix.stderr,
      /^kubeface: Cannot copy '.*jobs\/none\/': no object is stored under it\n$/,
    );
  });
});

Deno.test("kubeface run exits 2 naming an --inputs-expression that throws", async () => {
  await withStorage(async (dir) => {
    const r = await kubeface(["run", "-e", "value * 2", "-i", "range(3)", "--storage", dir]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(
      r.stderr,
      /^kubeface run: --inputs-expression 'range\(3\)' threw ReferenceError: range is not defined\n\nUsage: kubeface run/m,
    );
    assert.doesNotMatch(r.stderr, KUBEFACE_FRAME);
  });
});

Deno.test("kubeface run exits 2 naming an expression that does not parse or names nothing", async () => {
  await withStorage(async (dir) => {
    const syntax = await kubeface(["run", "-e", "value **", "-i", "[1]", "--storage", dir]);
    assert.equal(syntax.code, 2);
    assert.match(
      syntax.stderr,
      /^kubeface run: --expression 'value \*\*' is not a JavaScript expression: /,
    );
    const inputs = await kubeface(["run", "-e", "value", "-i", "[1,", "--storage", dir]);
    assert.equal(inputs.code, 2);
    assert.match(
      inputs.stderr,
      /^kubeface run: --inputs-expression '\[1,' is not a JavaScript expression: /m,
    );
    const unknown = await kubeface([
      "run",
      "-e",
      "range(value)",
      "-i",
      "[1, 2]",
      "--storage",
      dir,
      "-q",
    ]);
    assert.equal(unknown.code, 2, unknown.stderr);
    assert.match(
      unknown.stderr,
      /^kubeface run: --expression 'range\(value\)' threw ReferenceError: range is not defined \(for input \d\)\n/,
    );
  });
});

/** What a command printed to stderr, without the lines that name the job and its status page. */
function withoutJobLines(stderr: string): string {
  return stderr.replace(/^kubeface: (job|status) \S+\n/gm, "");
}

/** Write a module into a new temporary project (an empty deno.json) and run `fn` with its path. */
async function withModule(
  name: string,
  source: string,
  fn: (path: string, dir: string) => Promise<void>,
): Promise<void> {
  await withStorage(async (dir) => {
    await Deno.writeTextFile(join(dir, "deno.json"), "{}\n");
    await Deno.writeTextFile(join(dir, name), source);
    await fn(join(dir, name), dir);
  });
}

Deno.test("kubeface map exits 1 with Deno's message, without colours, when the module cannot be bundled", async () => {
  await withModule(
    "unmapped.ts",
    'import x from "not-mapped";\nexport const inputs = [1];\nexport const task = x;\n',
    async (path, dir) => {
      const r = await kubeface(["map", "-m", path, "--storage", join(dir, "s")], { colour: true });
      assert.equal(r.code, 1);
      assert.match(
        r.stderr,
        /^kubeface: Cannot bundle task module 'file:\/\/.*unmapped\.ts' with deno bundle \(using the configuration .*deno\.json, the nearest above the module; pass --config or the config option to use another\)\n/,
      );
      assert.match(r.stderr, /Import "not-mapped" not a dependency/);
      assert.match(r.stderr, /at file:\/\/.*unmapped\.ts:1:\d+/);
      assert.doesNotMatch(r.stderr, COLOUR, "stderr is not a terminal: no colours");
      assert.doesNotMatch(r.stderr, /Stack backtrace|unexpected error/);
      assert.doesNotMatch(r.stderr, KUBEFACE_FRAME);
      await assert.rejects(
        Deno.stat(join(dir, "s", "jobs")),
        Deno.errors.NotFound,
        "nothing stored",
      );

      // On a terminal (script(1) gives the command one) with NO_COLOR set: no colours either.
      const command = [Deno.execPath(), "run", "-A", `${REPO_ROOT}cli.ts`, "map", "-m", path]
        .concat(["--storage", join(dir, "s")]).map((a) => `'${a}'`).join(" ");
      const tty = await new Deno.Command("script", {
        args: ["-qec", command, "/dev/null"],
        env: { NO_COLOR: "1" },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(tty.stdout);
      assert.equal(tty.code, 1, text);
      assert.match(text, /Import "not-mapped" not a dependency/);
      assert.doesNotMatch(text, COLOUR, "NO_COLOR is set: no colours");
    },
  );
});

Deno.test("kubeface map exits 1 with the user's own frames when inputs or the module's top level throw", async () => {
  const source = `function load(): number[] {
  throw new RangeError("no inputs today");
}
export function inputs(): number[] {
  return load();
}
export function task(x: number): number {
  return x;
}
`;
  await withModule("inputs_throw.ts", source, async (path, dir) => {
    const r = await kubeface(["map", "-m", path, "--storage", dir], { colour: true });
    assert.equal(r.code, 1);
    assert.equal(
      withoutJobLines(r.stderr),
      `kubeface: Cannot read the inputs of task module 'file://${path}': its inputs threw RangeError: no inputs today
    at load (file://${path}:2:9)
    at inputs (file://${path}:5:10)
`,
    );
  });
  await withModule(
    "top_throws.ts",
    'export const inputs = [1];\nthrow new Error("not today");\n',
    async (path, dir) => {
      const r = await kubeface(["map", "-m", path, "--storage", dir]);
      assert.equal(r.code, 1);
      assert.equal(
        r.stderr,
        `kubeface: Cannot load task module 'file://${path}': it threw Error: not today
    at file://${path}:2:7
`,
      );
    },
  );
});

Deno.test("kubeface map --verbose logs each bundling, storage and backend step", async () => {
  await withStorage(async (dir) => {
    const r = await kubeface([
      "map",
      "-m",
      fixture("half.ts"),
      "--storage",
      dir,
      "--job",
      "v-1",
      "--verbose",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const root = `file://${dir}/`;
    for (
      const line of [
        /^kubeface: master: bundling file:\/\/.*half\.ts with the configuration .*deno\.json, the nearest above the module$/m,
        new RegExp(`^kubeface: storage: opened ${root}`, "m"),
        new RegExp(
          `^kubeface: storage: put ${root}jobs/v-1/inputs/0 \\(\\d+ bytes\\) \\(\\d+ ms\\)$`,
          "m",
        ),
        new RegExp(`^kubeface: storage: put ${root}jobs/v-1/manifest.json `, "m"),
        /^kubeface: backend: local: open job v-1 \(9 task\(s\), parallelism 4, /m,
        /^kubeface: backend: local: submit 9 attempt\(s\): task 0 \(attempt [\w-]+\), /m,
        /^kubeface: backend: local: task 8 attempt [\w-]+ started on /m,
        /^kubeface: backend: local: task 8 attempt [\w-]+ ended \(exited, exit code 0\)/m,
        /^kubeface: backend: local: close: done \(\d+ ms\)$/m,
      ]
    ) {
      assert.match(r.stderr, line);
    }
    const quiet = await kubeface(["map", "-m", fixture("half.ts"), "--storage", dir, "-q"]);
    assert.equal(quiet.stderr, "", "nothing is logged without --verbose");
  });
});

Deno.test("kubeface map --backend kubernetes refuses a local storage, saying what to use", async () => {
  await withStorage(async (dir) => {
    const r = await kubeface([
      "map",
      "-m",
      fixture("half.ts"),
      "--backend",
      "kubernetes",
      "--storage",
      dir,
      "--kubeconfig",
      join(dir, "no-such-kubeconfig"),
    ]);
    assert.equal(r.code, 2);
    assert.match(
      r.stderr,
      /^kubeface map: Cannot run on Kubernetes with storage '.*': pods cannot reach a directory of this machine; use Google Cloud Storage, e\.g\. --storage gs:\/\/BUCKET\/PREFIX/,
    );
    assert.deepEqual([...Deno.readDirSync(dir)], [], "nothing was stored");
  });
});

Deno.test("kubeface map --job-prefix keys the job PREFIX-000, and excludes --job", async () => {
  await withStorage(async (dir) => {
    const r = await kubeface([
      "map",
      "-m",
      fixture("half.ts"),
      "--storage",
      dir,
      "--job-prefix",
      "p",
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^kubeface: job p-000: 9 task\(s\)/m);
    const both = await kubeface([
      "map",
      "-m",
      fixture("half.ts"),
      "--job",
      "a",
      "--job-prefix",
      "p",
    ]);
    assert.equal(both.code, 2);
    assert.match(
      both.stderr,
      /^kubeface map: Cannot use --job and --job-prefix together: give one of them\n/,
    );
  });
});
