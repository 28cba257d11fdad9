// deno-lint-ignore-file no-console
/**
 * The Storage contract, one suite run against every implementation: a local
 * temporary directory, GCS on the fake-gcs-server emulator, and a real bucket
 * when `KUBEFACE_TEST_STORAGE=gs://BUCKET/PREFIX` is set. Then what only GCS
 * has: fault injection, large objects, error messages, the emulator variable.
 *
 * Without the emulator binary (and Go to build it) the GCS tests are skipped
 * with a printed reason, or fail when `CI=true`.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { NotFoundError, StorageError } from "../lib/errors.ts";
import { GcsStorage, type GcsStorageOptions } from "../lib/storage/gcs.ts";
import { wrapGcsError } from "../lib/storage/gcs_errors.ts";
import { emulatorEndpoint, parseGcsUrl } from "../lib/storage/gcs_url.ts";
import { LocalStorage } from "../lib/storage/local.ts";
import { backoffDelay, isTransient, retry } from "../lib/storage/retry.ts";
import { openStorage, readBytes, type Storage } from "../lib/storage/storage.ts";
import { type Emulator, ensureEmulatorBinary, startEmulator } from "./infra/gcs_emulator.ts";
import { type FaultyProxyOptions, startFaultyProxy } from "./infra/faulty_proxy.ts";

const MiB = 1024 * 1024;
const encode = (text: string) => new TextEncoder().encode(text);
const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
const inCi = Deno.env.get("CI") === "true";
const selected = Deno.env.get("KUBEFACE_TEST_STORAGES")?.split(",").map((s) => s.trim());
const wants = (kind: string) => !selected || selected.includes(kind);
const realBucket = Deno.env.get("KUBEFACE_TEST_STORAGE")?.startsWith("gs://")
  ? Deno.env.get("KUBEFACE_TEST_STORAGE")
  : undefined;

/** Why the emulator cannot run here, or undefined when it can. */
const emulatorProblem = wants("gcs")
  ? await ensureEmulatorBinary().then(() => undefined, (error: Error) => error.message)
  : "KUBEFACE_TEST_STORAGES does not include gcs";
if (emulatorProblem && !inCi) console.log(`skipping GCS emulator tests: ${emulatorProblem}`);

/** Define a test that needs the emulator: skipped without it, failing without it in CI. */
function emulatorTest(name: string, fn: () => Promise<void>): void {
  Deno.test({
    name,
    ignore: emulatorProblem !== undefined && !inCi,
    async fn() {
      if (emulatorProblem) {
        throw new Error(`CI=true but the GCS emulator is unavailable: ${emulatorProblem}`);
      }
      await fn();
    },
  });
}

/** GCS options for tests: small thresholds so a few MiB exercise resumable uploads. */
const SMALL_UPLOADS: GcsStorageOptions = { resumableThreshold: 1 * MiB, chunkSize: 1 * MiB };

/** A stream of `size` bytes, in chunks of `chunk`; byte i is `(i * 31 + seed) & 255`. */
function patterned(size: number, seed = 0, chunk = 256 * 1024): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream({
    pull(controller) {
      if (sent >= size) return controller.close();
      const bytes = new Uint8Array(Math.min(chunk, size - sent));
      for (let i = 0; i < bytes.length; i++) bytes[i] = ((sent + i) * 31 + seed) & 255;
      sent += bytes.length;
      controller.enqueue(bytes);
    },
  });
}

function isPatterned(bytes: Uint8Array, seed = 0): boolean {
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== ((i * 31 + seed) & 255)) return false;
  return true;
}

/** A stream that yields `before` bytes, then errors. */
function failingAfter(before: number): ReadableStream<Uint8Array> {
  const head = patterned(before).getReader();
  return new ReadableStream({
    async pull(controller) {
      const { done, value } = await head.read();
      if (done) controller.error(new Error("the producer failed half way"));
      else controller.enqueue(value);
    },
  });
}

/** Run `fn` over `items` with at most `limit` in flight. */
async function pool<T>(limit: number, items: T[], fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

async function keysOf(storage: Storage, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const info of storage.list(prefix)) keys.push(info.key);
  return keys.sort();
}

// ---------------------------------------------------------------------------
// The contract suite

/** A fresh, empty root of one implementation. */
interface Root extends AsyncDisposable {
  storage: Storage;
  /** Every file or object under the root, hidden ones included. */
  leftovers(): Promise<string[]>;
}

type Case = [name: string, fn: (storage: Storage, root: Root) => Promise<void>];

const contract: Case[] = [
  ["put then get round-trips bytes", async (storage) => {
    assert.equal(await storage.put("a/b/c.txt", encode("hello")), true);
    assert.equal(decode(await readBytes(storage, "a/b/c.txt")), "hello");
  }],
  ["put then get round-trips a stream of several MiB", async (storage) => {
    const size = 3 * MiB + 123;
    assert.equal(await storage.put("big.bin", patterned(size, 7)), true);
    const bytes = await readBytes(storage, "big.bin");
    assert.equal(bytes.length, size);
    assert.ok(isPatterned(bytes, 7), "content differs");
  }],
  ["put then get round-trips an empty object", async (storage) => {
    await storage.put("empty", new Uint8Array(0));
    assert.equal((await readBytes(storage, "empty")).length, 0);
    await storage.put("empty-stream", patterned(0));
    assert.equal((await readBytes(storage, "empty-stream")).length, 0);
  }],
  ["put overwrites an existing object", async (storage) => {
    await storage.put("k", encode("one"));
    await storage.put("k", encode("two"));
    assert.equal(decode(await readBytes(storage, "k")), "two");
  }],
  ["a put whose stream errors half way leaves no object", async (storage, root) => {
    for (const [key, size] of [["small", 100_000], ["large", 3 * MiB]] as const) {
      await assert.rejects(storage.put(`partial/${key}`, failingAfter(size)), StorageError);
      await assert.rejects(storage.get(`partial/${key}`), NotFoundError);
      assert.equal(await storage.stat(`partial/${key}`), undefined);
    }
    assert.deepEqual(await keysOf(storage, ""), []);
    assert.deepEqual(await root.leftovers(), [], "a temporary file or object is visible");
  }],
  ["put with ifAbsent writes once, then returns false and leaves the content", async (storage) => {
    assert.equal(await storage.put("once", encode("first"), { ifAbsent: true }), true);
    assert.equal(await storage.put("once", encode("second"), { ifAbsent: true }), false);
    assert.equal(await storage.put("once", patterned(2 * MiB), { ifAbsent: true }), false);
    assert.equal(decode(await readBytes(storage, "once")), "first");
  }],
  ["put with ifAbsent lets exactly one of several racers win", async (storage) => {
    const racers = Array.from({ length: 6 }, (_, i) => `racer ${i}`);
    const won = await Promise.all(
      racers.map((text) => storage.put("race", encode(text), { ifAbsent: true })),
    );
    assert.equal(won.filter(Boolean).length, 1, `winners: ${won}`);
    assert.equal(decode(await readBytes(storage, "race")), racers[won.indexOf(true)]);
  }],
  ["stat gives size and modification time, and undefined for a missing object", async (storage) => {
    const before = Date.now();
    await storage.put("s/x", encode("12345"));
    const info = await storage.stat("s/x");
    assert.equal(info?.key, "s/x");
    assert.equal(info?.size, 5);
    assert.ok(Math.abs(info.updated.getTime() - before) < 60_000, `updated ${info.updated}`);
    assert.equal(await storage.stat("s/missing"), undefined);
    assert.equal(await storage.stat("s"), undefined, "a directory is not an object");
  }],
  ["list yields the objects under a prefix, also when it is not a directory boundary", async (
    storage,
  ) => {
    for (const key of ["jobs/a/1", "jobs/ab/x", "jobs/b/2", "top"]) {
      await storage.put(key, encode(key));
    }
    assert.deepEqual(await keysOf(storage, "jobs/a"), ["jobs/a/1", "jobs/ab/x"]);
    assert.deepEqual(await keysOf(storage, "jobs/a/"), ["jobs/a/1"]);
    assert.deepEqual(await keysOf(storage, "jobs/"), ["jobs/a/1", "jobs/ab/x", "jobs/b/2"]);
    assert.deepEqual(await keysOf(storage, ""), ["jobs/a/1", "jobs/ab/x", "jobs/b/2", "top"]);
    assert.deepEqual(await keysOf(storage, "nothing/"), []);
    const [first] = await Array.fromAsync(storage.list("jobs/b/"));
    assert.equal(first?.size, "jobs/b/2".length);
  }],
  ["list pages through 2,500 objects", async (storage) => {
    const keys = Array.from({ length: 2500 }, (_, i) => `many/${String(i).padStart(4, "0")}`);
    await pool(32, keys, async (key) => void await storage.put(key, encode(key)));
    const listed = await keysOf(storage, "many/");
    assert.equal(listed.length, 2500);
    assert.deepEqual(listed, keys);
  }],
  ["delete removes an object, and deleting a missing one is fine", async (storage) => {
    await storage.put("d/x", encode("x"));
    await storage.delete("d/x");
    assert.equal(await storage.stat("d/x"), undefined);
    await storage.delete("d/x");
    await storage.delete("never/was");
    assert.deepEqual(await keysOf(storage, ""), []);
  }],
  ["malformed keys are rejected with TypeError", async (storage) => {
    for (const key of ["", "/abs", "a//b", "a/./b", "../up", "dir/"]) {
      await assert.rejects(storage.put(key, encode("x")), TypeError, `put '${key}'`);
      await assert.rejects(storage.get(key), TypeError, `get '${key}'`);
      await assert.rejects(storage.stat(key), TypeError, `stat '${key}'`);
      await assert.rejects(storage.delete(key), TypeError, `delete '${key}'`);
    }
  }],
  ["get of a missing object throws NotFoundError naming its URL", async (storage) => {
    const error = await storage.get("no/such").then(() => undefined, (e: unknown) => e);
    assert.ok(error instanceof NotFoundError, `got ${error}`);
    assert.equal(error.url, storage.url + "no/such");
    assert.match(error.message, /no\/such'?: the object does not exist/);
  }],
];

async function localRoot(): Promise<Root> {
  const dir = await Deno.makeTempDir({ prefix: "kubeface-storage-test-" });
  const storage = LocalStorage.open(dir);
  return {
    storage,
    async leftovers() {
      const files: string[] = [];
      const walk = async (path: string) => {
        for await (const entry of Deno.readDir(path)) {
          if (entry.isDirectory) await walk(join(path, entry.name));
          else files.push(join(path, entry.name).slice(dir.length + 1));
        }
      };
      await walk(dir);
      return files;
    },
    async [Symbol.asyncDispose]() {
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** A root under a unique prefix; with `cleanUp` (a real bucket) its objects are deleted after. */
async function gcsRoot(base: string, options: GcsStorageOptions, cleanUp: boolean): Promise<Root> {
  const url = `${base.replace(/\/?$/, "/")}t-${crypto.randomUUID().slice(0, 8)}/`;
  const storage = await GcsStorage.open(url, options);
  return {
    storage,
    leftovers: () => keysOf(storage, ""),
    async [Symbol.asyncDispose]() {
      if (cleanUp) await pool(16, await keysOf(storage, ""), (key) => storage.delete(key));
    },
  };
}

/** One test per implementation, one step per case. */
function contractSuite(
  label: string,
  setup: () => Promise<{ root(): Promise<Root> } & AsyncDisposable>,
  ignore = false,
): void {
  Deno.test({ name: `storage contract (${label})`, ignore }, async (t) => {
    await using implementation = await setup();
    for (const [name, fn] of contract) {
      await t.step(`storage contract (${label}): ${name}`, async () => {
        await using root = await implementation.root();
        await fn(root.storage, root);
      });
    }
  });
}

if (wants("local")) {
  contractSuite(
    "local",
    () => Promise.resolve({ root: localRoot, async [Symbol.asyncDispose]() {} }),
  );
}

if (wants("gcs")) {
  Deno.test({
    name: "storage contract (gcs emulator)",
    ignore: emulatorProblem !== undefined && !inCi,
    async fn(t) {
      if (emulatorProblem) {
        throw new Error(`CI=true but the GCS emulator is unavailable: ${emulatorProblem}`);
      }
      await using emulator = await startEmulator();
      await emulator.createBucket("kubeface-contract");
      for (const [name, fn] of contract) {
        await t.step(`storage contract (gcs): ${name}`, async () => {
          const options = { endpoint: emulator.url, ...SMALL_UPLOADS };
          await using root = await gcsRoot("gs://kubeface-contract/c", options, false);
          await fn(root.storage, root);
        });
      }
    },
  });
}

if (realBucket) {
  contractSuite(
    `gcs ${realBucket}`,
    () =>
      Promise.resolve({
        root: () => gcsRoot(realBucket, SMALL_UPLOADS, true),
        async [Symbol.asyncDispose]() {},
      }),
  );
}

// ---------------------------------------------------------------------------
// openStorage

Deno.test("openStorage rejects a URL scheme no storage handles with TypeError", async () => {
  await assert.rejects(
    openStorage("s3://bucket/x"),
    new TypeError(
      "Cannot open storage 's3://bucket/x': the scheme 's3' is not supported; use a local directory or gs://BUCKET/PREFIX",
    ),
  );
});

Deno.test("openStorage rejects an invalid bucket name with TypeError saying the rule", async () => {
  const cases: [string, RegExp][] = [
    ["gs://My_Bucket/x", /'My_Bucket' is not a valid bucket name \(bucket names are lowercase\)/],
    ["gs://ab", /have 3 to 63 characters/],
    ["gs://-bucket", /start and end with a letter or a digit/],
    ["gs://bucket!/x", /contain only lowercase letters/],
    ["gs://googlebucket", /cannot start with 'goog'/],
    ["gs://192.168.1.1", /cannot be IP addresses/],
    ["gs://", /the bucket name is empty/],
    ["gs://bucket/a//b", /the prefix 'a\/\/b' has an empty, '\.' or '\.\.' part/],
  ];
  for (const [url, message] of cases) {
    await openStorage(url).then(() => assert.fail(url), (error: Error) => {
      assert.ok(error instanceof TypeError);
      assert.match(error.message, message);
    });
  }
});

Deno.test("gs:// URLs are normalised to gs://BUCKET/PREFIX/", () => {
  assert.deepEqual(parseGcsUrl("gs://bucket"), {
    bucket: "bucket",
    prefix: "",
    url: "gs://bucket/",
  });
  assert.deepEqual(parseGcsUrl("gs://bucket/"), {
    bucket: "bucket",
    prefix: "",
    url: "gs://bucket/",
  });
  assert.deepEqual(parseGcsUrl("gs://my.bucket_1/runs/a/"), {
    bucket: "my.bucket_1",
    prefix: "runs/a/",
    url: "gs://my.bucket_1/runs/a/",
  });
});

Deno.test("STORAGE_EMULATOR_HOST is read as HOST:PORT or as an http(s) URL", () => {
  assert.equal(emulatorEndpoint(undefined), undefined);
  assert.equal(emulatorEndpoint(""), undefined);
  assert.equal(emulatorEndpoint("127.0.0.1:4443"), "http://127.0.0.1:4443");
  assert.equal(emulatorEndpoint("localhost:9023"), "http://localhost:9023");
  assert.equal(emulatorEndpoint("http://127.0.0.1:4443/"), "http://127.0.0.1:4443");
  assert.equal(emulatorEndpoint("https://gcs.test:8443/storage/v1"), "https://gcs.test:8443");
  assert.throws(() => emulatorEndpoint("ftp://x:1"), TypeError);
  assert.throws(() => emulatorEndpoint("http://x:1/other/path"), TypeError);
});

/** Run a snippet in a fresh Deno process (own environment) and return its stdout. */
async function runSnippet(code: string, env: Record<string, string>): Promise<string> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--quiet", "--ext=ts", code],
    env,
    cwd: new URL("..", import.meta.url).pathname,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = decode(output.stdout);
  assert.ok(output.success, `snippet failed:\n${text}\n${decode(output.stderr)}`);
  return text.trim();
}

const storageModule = new URL("../lib/storage/storage.ts", import.meta.url).href;

emulatorTest(
  "openStorage uses STORAGE_EMULATOR_HOST in every accepted form, for writes and reads",
  async () => {
    await using emulator = await startEmulator();
    await emulator.createBucket("kubeface-env");
    const code = `
      import { openStorage, readBytes } from "${storageModule}";
      const storage = await openStorage("gs://kubeface-env/runs");
      await storage.put("small", new TextEncoder().encode("hi"));
      await storage.put("large", new Blob([new Uint8Array(9 * 1024 * 1024)]).stream());
      console.log(storage.url, (await readBytes(storage, "small")).length, (await readBytes(storage, "large")).length);
    `;
    for (const value of [emulator.host, emulator.url, `${emulator.url}/storage/v1`]) {
      assert.equal(
        await runSnippet(code, { STORAGE_EMULATOR_HOST: value }),
        `gs://kubeface-env/runs/ 2 ${9 * MiB}`,
        value,
      );
    }
  },
);

emulatorTest("openStorage of a missing bucket fails at once saying how to create it", async () => {
  await using emulator = await startEmulator();
  const code = `
    import { openStorage } from "${storageModule}";
    const started = Date.now();
    await openStorage("gs://kubeface-missing/x").then(
      () => console.log("opened"),
      (e) => console.log(e.name + ": " + e.message + " in " + (Date.now() - started < 5000 ? "time" : "too long")),
    );
  `;
  assert.equal(
    await runSnippet(code, { STORAGE_EMULATOR_HOST: emulator.host }),
    "StorageError: Cannot open 'gs://kubeface-missing/x/': bucket 'kubeface-missing' does not exist; create it with `gcloud storage buckets create gs://kubeface-missing` or fix the URL in time",
  );
});

// ---------------------------------------------------------------------------
// GCS only

/** An error as the client library builds it from a JSON API error response. */
async function apiError(code: number, message: string): Promise<Error> {
  const { ApiError } = await import("@google-cloud/storage");
  return new ApiError({ code, message, errors: [{ message }], response: {} as never });
}

Deno.test("gcs errors: 403 names the missing permission and how to fix access", async () => {
  const denied = await apiError(
    403,
    "runner@proj.iam.gserviceaccount.com does not have storage.objects.create access to the Google Cloud Storage object. Permission 'storage.objects.create' denied on resource (or it may not exist).",
  );
  const error = wrapGcsError(denied, { bucket: "b", url: "gs://b/p/k", action: "write" });
  assert.ok(error instanceof StorageError);
  assert.equal(
    error.message,
    "Cannot write 'gs://b/p/k': permission 'storage.objects.create' is denied to runner@proj.iam.gserviceaccount.com; check `gcloud auth application-default login` or the service account's roles on bucket 'b' (e.g. roles/storage.objectAdmin)",
  );
  assert.equal(error.cause, denied);
});

Deno.test("gcs errors: missing credentials say how to log in", async () => {
  for (
    const cause of [
      new Error(
        "Could not load the default credentials. Browse to https://cloud.google.com/docs/authentication/getting-started for more information.",
      ),
      await apiError(401, "Invalid Credentials"),
    ]
  ) {
    const error = wrapGcsError(cause, { bucket: "b", url: "gs://b/", action: "open" });
    assert.ok(error instanceof StorageError);
    assert.match(
      error.message,
      /^Cannot open 'gs:\/\/b\/': no usable Application Default Credentials/,
    );
    assert.match(error.message, /gcloud auth application-default login/);
    assert.match(error.message, /GOOGLE_APPLICATION_CREDENTIALS/);
  }
});

Deno.test("gcs errors: a missing object is NotFoundError, a missing bucket says so", async () => {
  const context = { bucket: "b", url: "gs://b/k", action: "read" } as const;
  assert.ok(
    wrapGcsError(await apiError(404, "No such object: b/k"), context) instanceof
      NotFoundError,
  );
  const bucket = wrapGcsError(
    await apiError(404, "The specified bucket does not exist."),
    context,
  );
  assert.ok(!(bucket instanceof NotFoundError));
  assert.match(bucket.message, /bucket 'b' does not exist; create it with `gcloud storage/);
});

Deno.test("retry: transient errors are 408, 429, 5xx and dropped connections", () => {
  for (const status of [408, 429, 500, 502, 503, 504]) assert.ok(isTransient({ code: status }));
  for (const status of [400, 401, 403, 404, 409, 412]) assert.ok(!isTransient({ code: status }));
  assert.ok(isTransient(Object.assign(new Error("socket hang up"), { code: "ECONNRESET" })));
  assert.ok(isTransient(new Deno.errors.ConnectionReset("reset")));
  assert.ok(isTransient(new TypeError("error sending request for url", { cause: new Error("x") })));
  assert.ok(isTransient({ errors: [{ reason: "ECONNRESET" }] }));
  assert.ok(isTransient(new Error("wrapped", { cause: { code: "503" } })));
  assert.ok(!isTransient(new TypeError("Cannot use storage key")));
});

Deno.test("retry: delays grow exponentially with full jitter, capped", () => {
  const options = { minDelay: 100, maxDelay: 1000, multiplier: 2 };
  assert.equal(backoffDelay(1, { ...options, random: () => 0.999 }), 99);
  assert.equal(backoffDelay(3, { ...options, random: () => 0.5 }), 200);
  assert.equal(backoffDelay(10, { ...options, random: () => 0.999 }), 999);
  assert.equal(backoffDelay(2, { ...options, random: () => 0 }), 0);
});

Deno.test("retry: retries transient errors only, up to maxAttempts", async () => {
  const delays: number[] = [];
  const delayFn = (ms: number) => (delays.push(ms), Promise.resolve());
  let calls = 0;
  const value = await retry(() => {
    if (++calls < 3) return Promise.reject({ code: 503 });
    return Promise.resolve("ok");
  }, { delayFn, random: () => 0.5, minDelay: 100 });
  assert.equal(value, "ok");
  assert.deepEqual(delays, [50, 100]);

  calls = 0;
  await assert.rejects(retry(() => (calls++, Promise.reject({ code: 404 })), { delayFn }));
  assert.equal(calls, 1);
  calls = 0;
  await assert.rejects(
    retry(() => (calls++, Promise.reject({ code: 429 })), { delayFn, maxAttempts: 4 }),
  );
  assert.equal(calls, 4);
});

/** Start an emulator with a bucket, and a faulty proxy in front of it. */
async function faultyEmulator(
  bucket: string,
  failureRate: number,
  options: Partial<FaultyProxyOptions> = {},
) {
  const emulator: Emulator = await startEmulator();
  await emulator.createBucket(bucket);
  const proxy = startFaultyProxy({ upstream: emulator.url, failureRate, seed: 42, ...options });
  return {
    emulator,
    proxy,
    async [Symbol.asyncDispose]() {
      await proxy[Symbol.asyncDispose]();
      await emulator[Symbol.asyncDispose]();
    },
  };
}

const FAST_RETRY = { maxAttempts: 12, minDelay: 5, maxDelay: 100 };

emulatorTest(
  "gcs storage: puts, gets and lists of 200 objects all succeed through a proxy failing 20% of requests",
  async () => {
    // fake-gcs-server completes an upload session on its status query (see
    // tests/infra/gcs_emulator.ts), so a failed chunk request fails the put there
    // (kubeface deletes the short object); the chunk requests of upload sessions
    // are spared. tests/gcs_resumable_test.ts resumes uploads on gcp-storage-emulator.
    await using env = await faultyEmulator("kubeface-faults", 0, {
      spare: (_method, target) => target.includes("upload_id="),
    });
    const storage = await GcsStorage.open("gs://kubeface-faults/job", {
      endpoint: env.proxy.url,
      ...SMALL_UPLOADS,
      retry: FAST_RETRY,
    });
    env.proxy.setFailureRate(0.2);
    const items = Array.from({ length: 200 }, (_, i) => i);
    const large = (i: number) => i % 40 === 0; // 5 objects go as resumable uploads
    const body = (i: number) => large(i) ? patterned(MiB + 4096 * i, i) : encode(`result ${i}`);
    const wins: number[] = [];
    await pool(16, items, async (i) => {
      if (await storage.put(`results/${i}`, body(i), { ifAbsent: true })) wins.push(i);
    });
    assert.deepEqual(wins.sort((a, b) => a - b), items, "every put won exactly once");
    await pool(16, items, async (i) => {
      const bytes = await readBytes(storage, `results/${i}`);
      if (large(i)) assert.ok(bytes.length === MiB + 4096 * i && isPatterned(bytes, i), `${i}`);
      else assert.equal(decode(bytes), `result ${i}`);
    });
    const listed = await keysOf(storage, "results/");
    assert.equal(listed.length, 200);
    assert.equal(new Set(listed).size, 200);
    for (let round = 0; round < 3; round++) {
      assert.equal((await keysOf(storage, "results/")).length, 200);
    }
    const { failed, requests } = env.proxy.stats;
    console.log(`faulty proxy: ${requests} requests, failed ${JSON.stringify(failed)}`);
    for (const fault of ["503", "429", "reset", "cut"] as const) {
      assert.ok(failed[fault] > 5, `too few '${fault}' faults injected: ${failed[fault]}`);
    }
  },
);

emulatorTest(
  "gcs storage: a read whose connection drops half way resumes where it stopped",
  async () => {
    const ranges: string[] = [];
    await using env = await faultyEmulator("kubeface-resume", 0, {
      faults: ["cut"],
      spare(_method, target, head) {
        const range = /\r\nrange: *(bytes=\d+-)/i.exec(head)?.[1];
        if (target.includes("alt=media") && range) ranges.push(range);
        return !target.includes("alt=media");
      },
    });
    const storage = await GcsStorage.open("gs://kubeface-resume/r", {
      endpoint: env.proxy.url,
      retry: FAST_RETRY,
    });
    await storage.put("object", patterned(6 * MiB, 3));
    env.proxy.setFailureRate(0.6);
    for (let i = 0; i < 3; i++) {
      const bytes = await readBytes(storage, "object");
      assert.equal(bytes.length, 6 * MiB);
      assert.ok(isPatterned(bytes, 3));
    }
    assert.ok(env.proxy.stats.failed.cut >= 2, `cuts: ${env.proxy.stats.failed.cut}`);
    assert.ok(ranges.some((range) => range !== "bytes=0-"), `no resumed read: ${ranges}`);
  },
);

/**
 * Established TCP connections of this machine to `port` on loopback, from /proc/net/tcp (Linux),
 * read by `cat`: Deno lets a test read /proc only with every permission, and the suites run with
 * --allow-run but not --allow-all.
 */
async function connectionsTo(port: number): Promise<number> {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  const { stdout } = await new Deno.Command("cat", { args: ["/proc/net/tcp"] }).output();
  const lines = new TextDecoder().decode(stdout).trim().split("\n").slice(1);
  return lines.filter((line) => {
    const [, , remote, state] = line.trim().split(/\s+/);
    return remote?.endsWith(hex) && state === "01";
  }).length;
}

emulatorTest(
  "gcs storage: a burst of 600 requests opens no more connections than maxConcurrentRequests",
  async () => {
    await using emulator = await startEmulator();
    await emulator.createBucket("kubeface-burst");
    const storage = await GcsStorage.open("gs://kubeface-burst/b", {
      endpoint: emulator.url,
      maxConcurrentRequests: 8,
    });
    await storage.put("there", encode("x"));
    const found = await Promise.all(
      Array.from({ length: 600 }, (_, i) => storage.stat(i % 2 ? "there" : `missing-${i}`)),
    );
    assert.equal(found.filter((info) => info?.size === 1).length, 300);
    assert.equal(found.filter((info) => info === undefined).length, 300);
    const open = await connectionsTo(Number(new URL(emulator.url).port));
    assert.ok(open <= 8 + 2, `${open} connections to the emulator after the burst`);
  },
);

Deno.test("gcs storage: maxConcurrentRequests below 1 is refused, naming the option", async () => {
  for (const bad of [0, 1.5, -1]) {
    await assert.rejects(
      GcsStorage.open("gs://kubeface-any/x", {
        endpoint: "http://127.0.0.1:1",
        maxConcurrentRequests: bad,
      }),
      new RegExp(`^RangeError: Cannot use maxConcurrentRequests ${bad}: give an integer >= 1`),
    );
  }
});

emulatorTest("gcs storage: list fetches one page at a time", async () => {
  await using env = await faultyEmulator("kubeface-pages", 0);
  const storage = await GcsStorage.open("gs://kubeface-pages/p", {
    endpoint: env.proxy.url,
    pageSize: 10,
  });
  await pool(
    8,
    Array.from({ length: 35 }, (_, i) => i),
    (i) => storage.put(`k/${i}`, encode("x")).then(() => {}),
  );
  const before = env.proxy.stats.requests;
  const iterator = storage.list("k/")[Symbol.asyncIterator]();
  for (let i = 0; i < 10; i++) assert.equal((await iterator.next()).done, false);
  assert.equal(env.proxy.stats.requests - before, 1, "first page only");
  await iterator.next();
  assert.equal(env.proxy.stats.requests - before, 2, "second page on demand");
  await iterator.return?.();
  assert.equal((await keysOf(storage, "k/")).length, 35);
});

const LARGE_MIB = Number(Deno.env.get("KUBEFACE_TEST_LARGE_MIB") ?? 512);

/**
 * The round trip of the large-object test, run in a fresh process (like a
 * master) so that its RSS says what streaming costs rather than what earlier
 * tests left. Prints one JSON line.
 */
const LARGE_ROUND_TRIP = `
  import { GcsStorage } from "${new URL("../lib/storage/gcs.ts", import.meta.url).href}";
  const [endpoint, mib, chunkMib] = Deno.args;
  const MiB = 1024 * 1024, size = Number(mib) * MiB;
  const source = (total, seed) => {
    let sent = 0;
    return new ReadableStream({ pull(c) {
      if (sent >= total) return c.close();
      const bytes = new Uint8Array(Math.min(MiB, total - sent));
      for (let i = (4093 - sent % 4093) % 4093; i < bytes.length; i += 4093) {
        bytes[i] = ((sent + i) * 31 + seed) & 255;
      }
      sent += bytes.length;
      c.enqueue(bytes);
    } });
  };
  const storage = await GcsStorage.open("gs://kubeface-large/l", { endpoint, chunkSize: Number(chunkMib) * MiB });
  await storage.put("warm-up", source(9 * MiB, 0)); // load the code paths first
  for await (const _ of await storage.get("warm-up"));
  const base = Deno.memoryUsage().rss;
  let peak = base;
  const sampler = setInterval(() => peak = Math.max(peak, Deno.memoryUsage().rss), 5);
  let started = performance.now();
  await storage.put("large", source(size, 5));
  const up = (performance.now() - started) / 1000;
  started = performance.now();
  let received = 0, intact = true;
  for await (const chunk of await storage.get("large")) {
    for (let i = (4093 - received % 4093) % 4093; i < chunk.length; i += 4093) {
      if (chunk[i] !== (((received + i) * 31 + 5) & 255)) intact = false;
    }
    received += chunk.length;
  }
  const down = (performance.now() - started) / 1000;
  clearInterval(sampler);
  console.log(JSON.stringify({ up, down, base, peak: Math.max(peak, Deno.memoryUsage().rss), received, intact }));
`;

emulatorTest(
  `gcs storage: a ${LARGE_MIB} MiB object streams up and down with the process RSS growing by well under its size`,
  async () => {
    await using emulator = await startEmulator();
    await emulator.createBucket("kubeface-large");
    // 16 MiB chunks: the emulator re-hashes the whole object on every chunk.
    const output = await new Deno.Command(Deno.execPath(), {
      args: [
        "eval",
        "--quiet",
        "--ext=js",
        LARGE_ROUND_TRIP,
        emulator.url,
        String(LARGE_MIB),
        "16",
      ],
      cwd: new URL("..", import.meta.url).pathname,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(output.success, decode(output.stderr));
    const result = JSON.parse(decode(output.stdout).trim().split("\n").at(-1)!);
    const growth = (result.peak - result.base) / MiB;
    console.log(
      `${LARGE_MIB} MiB: up ${result.up.toFixed(1)} s (${
        (LARGE_MIB / result.up).toFixed(0)
      } MiB/s), ` +
        `down ${result.down.toFixed(1)} s (${(LARGE_MIB / result.down).toFixed(0)} MiB/s), ` +
        `RSS ${(result.base / MiB).toFixed(0)} MiB + ${growth.toFixed(0)} MiB at peak`,
    );
    assert.equal(result.received, LARGE_MIB * MiB);
    assert.ok(result.intact, "content differs");
    assert.ok(growth < LARGE_MIB / 2, `RSS grew by ${growth.toFixed(0)} MiB`);
  },
);
