// deno-lint-ignore-file no-console
/**
 * One object streamed through kubeface's Storage seam and back, without the
 * value ever in memory: `put` from a generated stream, `get` into a
 * checksum. Prints one JSON line ({@linkcode StreamReport}) with the times
 * and the process's peak RSS.
 *
 * ```sh
 * STORAGE_EMULATOR_HOST=… deno run -A bench/drivers/storage_stream.ts '{"storage": "gs://b/x/", "size": 1073741824}'
 * ```
 *
 * @module
 */

import { openStorage } from "../../lib/storage/storage.ts";

/** What to stream. */
export interface StreamSpec {
  /** Storage root URL. */
  storage: string;
  /** Bytes. */
  size: number;
}

/** Times in milliseconds, and the peak RSS in bytes. */
export interface StreamReport {
  putMs: number;
  getMs: number;
  /** RSS when the transfer started (after loading the storage client). */
  baseBytes: number;
  vmHwmBytes: number;
}

const PIECE = 8 * 2 ** 20;

function hwm(): number {
  const status = Deno.readTextFileSync("/proc/self/status");
  return Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN) * 1024;
}

async function main(spec: StreamSpec): Promise<StreamReport> {
  await using storage = await openStorage(spec.storage);
  await storage.put("warm-up", new Uint8Array(10)); // load the client before measuring
  const baseBytes = Deno.memoryUsage().rss;
  let sent = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent >= spec.size) return controller.close();
      const n = Math.min(PIECE, spec.size - sent);
      controller.enqueue(new Uint8Array(n).fill(sent / PIECE % 251));
      sent += n;
    },
  });
  let t = performance.now();
  await storage.put("big", body);
  const putMs = performance.now() - t;
  t = performance.now();
  let received = 0;
  for await (const chunk of await storage.get("big")) received += chunk.length;
  const getMs = performance.now() - t;
  if (received !== spec.size) throw new Error(`read ${received} bytes back, expected ${spec.size}`);
  await storage.delete("big");
  return { putMs, getMs, baseBytes, vmHwmBytes: hwm() };
}

if (import.meta.main) {
  console.log(JSON.stringify(await main(JSON.parse(Deno.args[0] ?? "{}") as StreamSpec)));
  Deno.exit(0); // client libraries may keep sockets open
}
