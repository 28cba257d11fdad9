/**
 * What recovering a resumable upload costs: one object uploaded as a stream
 * through the fault proxy to gcp-storage-emulator (the emulator whose upload
 * sessions resume as GCS documents; fake-gcs-server completes a session on
 * its status query), once cleanly and once with a chunk past the middle of
 * the object cut half way and answered 503 (`return-503-after-YK`), by kubeface's
 * `GcsStorage.put` and by `@google-cloud/storage`'s `createWriteStream` with
 * the same chunk size. Both use their default retry delays.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { GcsStorage } from "../../lib/storage/gcs.ts";
import { emulatorProblem, proxiedEmulator } from "../../tests/infra/gcs_targets.ts";
import { parseUploadRange } from "../../tests/infra/gcs_operations.ts";
import type { BenchContext } from "./bench.ts";
import { fixed, median, ratio } from "./stats.ts";
import type { Table } from "./table.ts";

const MiB = 2 ** 20;
const PIECE = MiB;

/** A stream of `size` bytes in 1 MiB pieces, and the MD5 it will have. */
function source(size: number): { stream: ReadableStream<Uint8Array>; md5: string } {
  const piece = (at: number) => new Uint8Array(Math.min(PIECE, size - at)).fill(at / PIECE & 255);
  const hash = createHash("md5");
  for (let at = 0; at < size; at += PIECE) hash.update(piece(at));
  let sent = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent >= size) return controller.close();
      const bytes = piece(sent);
      sent += bytes.length;
      controller.enqueue(bytes);
    },
  });
  return { stream, md5: hash.digest("base64") };
}

interface Sample {
  wallMs: number;
  chunks: number;
  statusQueries: number;
  sentBytes: number;
}

type Uploader = (endpoint: string, bucket: string, name: string, size: number) => Promise<void>;

/** kubeface's resumable upload. */
const kubeface: Uploader = async (endpoint, bucket, name, size) => {
  const storage = await GcsStorage.open(`gs://${bucket}/`, {
    endpoint,
    checkBucket: false,
    chunkSize: 16 * MiB,
  });
  await storage.put(name, source(size).stream);
};

/** `@google-cloud/storage` resumable upload with the same chunk size. */
const library: Uploader = async (endpoint, bucket, name, size) => {
  const { Storage } = await import("@google-cloud/storage");
  const client = new Storage({ apiEndpoint: endpoint, projectId: "kubeface-bench" });
  (client as unknown as { baseUrl: string }).baseUrl = `${endpoint}/storage/v1`;
  const stream = client.bucket(bucket).file(name).createWriteStream({
    resumable: true,
    chunkSize: 16 * MiB,
    validation: "md5",
    // Without a precondition the library does not retry an upload at all
    // (conformance scenario 3); a new object's precondition lets it recover.
    preconditionOpts: { ifGenerationMatch: 0 },
  });
  const done = new Promise<void>((resolve, reject) => {
    stream.once("finish", resolve);
    stream.once("error", reject);
  });
  for await (const piece of source(size).stream) {
    if (!stream.write(Buffer.from(piece))) {
      await new Promise((resolve) => stream.once("drain", resolve));
    }
  }
  stream.end();
  await done;
};

/**
 * The upload-recovery table, or why it could not be measured.
 */
export async function uploadRecovery(
  context: BenchContext,
  size: number,
  runs: number,
): Promise<{ table?: Table; skipped?: string }> {
  const problem = await emulatorProblem("gcp-storage-emulator");
  if (problem) return { skipped: `upload recovery: ${problem}` };
  // Half way, and 8 MiB into a 16 MiB chunk: the server keeps half of that chunk.
  const cut = Math.floor((size / 2 + 8 * MiB) / 1024);
  const rows: { uploader: string; run: Uploader; fault: string[] }[] = [
    { uploader: "kubeface GcsStorage.put", run: kubeface, fault: [] },
    { uploader: "kubeface GcsStorage.put", run: kubeface, fault: [`return-503-after-${cut}K`] },
    { uploader: "@google-cloud/storage createWriteStream", run: library, fault: [] },
    {
      uploader: "@google-cloud/storage createWriteStream",
      run: library,
      fault: [`return-503-after-${cut}K`],
    },
  ];
  const samples = new Map(rows.map((row) => [row, [] as Sample[]]));
  await using env = await proxiedEmulator("gcp-storage-emulator");
  const expected = source(size).md5;
  for (let i = 1; i <= runs; i++) {
    for (const row of rows) {
      context.log(`run ${i}: ${row.uploader}, ${row.fault.join(" ") || "no fault"}`);
      env.proxy.setInstructions({ "storage.objects.insert": row.fault });
      const mark = env.proxy.requests.length;
      const started = performance.now();
      await row.run(env.proxy.url, env.bucket, "object", size);
      const wallMs = performance.now() - started;
      const stored = await (await fetch(
        `${env.emulator.url}/storage/v1/b/${env.bucket}/o/object`,
      )).json();
      if (stored.md5Hash !== expected || Number(stored.size) !== size) {
        throw new Error(`${row.uploader} stored other bytes (${stored.size}, ${stored.md5Hash})`);
      }
      if (Object.keys(env.proxy.remaining()).length) throw new Error("the fault did not fire");
      const requests = env.proxy.requests.slice(mark).filter((r) => r.uploadSession);
      const chunks = requests.filter((r) => parseUploadRange(r.contentRange)?.first !== undefined);
      samples.get(row)!.push({
        wallMs,
        chunks: chunks.length,
        statusQueries: requests.length - chunks.length,
        sentBytes: chunks.reduce((n, r) => n + (r.contentLength ?? 0), 0),
      });
      await fetch(`${env.emulator.url}/storage/v1/b/${env.bucket}/o/object`, { method: "DELETE" })
        .then((r) => r.body?.cancel());
      context.log(`  ${fixed(wallMs / 1000, 1)} s`);
    }
  }
  const med = (row: (typeof rows)[number], f: (s: Sample) => number) =>
    median(samples.get(row)!.map(f));
  const clean = (row: (typeof rows)[number]) =>
    rows.find((r) => r.uploader === row.uploader && r.fault.length === 0)!;
  return {
    table: {
      title: `Upload recovery: a ${
        fixed(size / MiB, 0)
      } MiB stream in 16 MiB chunks to ${env.emulator.name}, through the fault proxy`,
      columns: [
        "Uploader",
        "Fault",
        "Runs",
        "Wall s",
        "MiB/s",
        "Chunk requests",
        "Status queries",
        "Re-sent MiB",
        "vs same uploader, no fault",
      ],
      rows: rows.map((row) => [
        row.uploader,
        row.fault.length ? `\`${row.fault[0]}\` (resumed)` : "none",
        String(samples.get(row)!.length),
        fixed(med(row, (s) => s.wallMs) / 1000, 1),
        fixed(size / MiB / (med(row, (s) => s.wallMs) / 1000), 0),
        String(med(row, (s) => s.chunks)),
        String(med(row, (s) => s.statusQueries)),
        fixed((med(row, (s) => s.sentBytes) - size) / MiB, 1),
        row.fault.length ? ratio(med(row, (s) => s.wallMs), med(clean(row), (s) => s.wallMs)) : "–",
      ]),
      notes: [
        `The fault cuts the chunk that holds byte ${
          cut * 1024
        }, half way through that chunk: the emulator keeps the bytes before it, the client gets 503, asks for the session's status (an empty PUT with \`Content-Range: bytes */*\`) and sends the rest from the first byte the server lacks. Every object is checked afterwards: size and MD5 as stored.`,
        "Wall is the upload call alone, in this process. Both uploaders wait their default first retry delay (kubeface: up to 0.5 s, with full jitter; the library: 1 s plus up to 1 s). The library is given `ifGenerationMatch: 0`: without a precondition it does not retry an upload (retry conformance scenario 3) and the faulted upload fails.",
        "Re-sent MiB: bytes of chunk requests beyond the object's size (a cut chunk's bytes after the cut are sent again).",
      ],
    },
  };
}
