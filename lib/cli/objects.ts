/**
 * `kubeface cat` (print a stored object, decoding kubeface records) and
 * `kubeface cp` (copy objects between local paths and storage URLs).
 *
 * @module
 */

import { isRecord, readRecord, type RecordHeader } from "../format/records.ts";
import type { ErrorRecord } from "../format/manifest.ts";
import { openLocation } from "../storage/location.ts";
import { BoundedPool } from "../pool.ts";
import { helpText, parseFlags } from "./flags.ts";
import { type Io, UsageError } from "./io.ts";
import { toJsonValue } from "./output.ts";

/** Help of `kubeface cat`. */
export const CAT_HELP = helpText(
  "kubeface cat URL",
  "Print a stored object. kubeface records (inputs, results) are decoded: a result\nas JSON with its header, an error with its remote stack; other objects as they are.\nURL is gs://BUCKET/OBJECT, a file:// URL or a local path.",
  [],
);

/** Help of `kubeface cp`. */
export const CP_HELP = helpText(
  "kubeface cp SRC DST",
  "Copy an object, or every object under a prefix (SRC ending in / or a directory),\nbetween local paths and storage URLs (gs://BUCKET/OBJECT). Copies stream.\nWith DST -, the object SRC is written to standard output as it is.",
  [],
);

/** `kubeface cat`. */
export async function catCommand(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parseFlags(args, [], 1);
  if (values.help) {
    await io.out(CAT_HELP);
    return 0;
  }
  const [url] = positionals;
  if (!url) throw new UsageError("give the URL or path of the object to print");
  const location = await openLocation(url);
  await using storage = location.storage;
  if (location.prefix) {
    throw new UsageError(
      `'${url}' is a prefix; give one object (list it with kubeface cp or gsutil)`,
    );
  }
  if (!(await isRecord(await storage.get(location.key)))) {
    for await (const chunk of await storage.get(location.key)) {
      await io.out(new TextDecoder().decode(chunk, { stream: true }));
    }
    return 0;
  }
  const body = await storage.get(location.key);
  const { header, value } = await readRecord<RecordHeader & { error?: ErrorRecord }>(body, url);
  if (header.error) {
    await io.out(
      `${JSON.stringify(header, null, 2)}\n\n${header.error.stack || header.error.message}\n`,
    );
    return 0;
  }
  await io.out(JSON.stringify({ ...header, value: toJsonValue(value) }, null, 2) + "\n");
  return 0;
}

/** `kubeface cp`. */
export async function cpCommand(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parseFlags(args, [], 2);
  if (values.help) {
    await io.out(CP_HELP);
    return 0;
  }
  const [src, dst] = positionals;
  if (!src || !dst) throw new UsageError("give a source and a destination");
  const from = await openLocation(src);
  await using fromStorage = from.storage;
  if (!from.prefix && !(await fromStorage.stat(from.key))) {
    io.err(`kubeface: Cannot copy '${src}': there is no such object (nor a directory or prefix)\n`);
    return 1;
  }
  if (dst === "-") {
    if (from.prefix) {
      throw new UsageError(
        `'${src}' is a prefix: only one object can be written to standard output`,
      );
    }
    for await (const chunk of await fromStorage.get(from.key)) await io.out(chunk);
    return 0;
  }
  const to = await openLocation(dst);
  await using toStorage = to.storage;
  if (!from.prefix) {
    const key = to.prefix ? from.key : to.key;
    await toStorage.put(key, await fromStorage.get(from.key));
    return 0;
  }
  if (!to.prefix) {
    throw new UsageError(`'${src}' is a prefix: the destination must be one too (end it with /)`);
  }
  const pool = new BoundedPool({ concurrency: 8 });
  let copied = 0;
  for await (const { key } of fromStorage.list("")) {
    await pool.add(1, async () => {
      await toStorage.put(key, await fromStorage.get(key));
      copied++;
    });
  }
  await pool.drain();
  if (copied === 0) {
    io.err(`kubeface: Cannot copy '${src}': no object is stored under it\n`);
    return 1;
  }
  io.err(`kubeface: copied ${copied} object(s) from ${src} to ${dst}\n`);
  return 0;
}
