/**
 * A serving worker (`worker.ts --serve`), for the local backend's warm pool:
 * it reads attempt requests, one JSON line each, from its input while it
 * runs the ones before them, so the next attempt is ready when one ends; it
 * reports, on control lines, when it is ready and when each attempt starts
 * and ends.
 *
 * @module
 */

import {
  type AttemptRequest,
  type CancelRequest,
  CONTROL_PREFIX,
  type ControlMessage,
} from "./protocol.ts";
import type { AttemptOutcome } from "./run.ts";

/** Runs one attempt; returns its exit code and what it stored. */
export type RunAttempt = (task: number, attempt: string) => Promise<AttemptOutcome>;

/** Serve requests from `input` until it ends, writing control lines with `write`. */
export async function serve(
  run: RunAttempt,
  input: ReadableStream<Uint8Array>,
  write: (line: string) => Promise<unknown>,
): Promise<void> {
  const control = (message: ControlMessage) =>
    write(`${CONTROL_PREFIX}${JSON.stringify(message)}\n`);
  const pending: AttemptRequest[] = [];
  let ended = false;
  let wake = () => {};
  const reading = (async () => {
    let buffer = "";
    for await (const chunk of input.pipeThrough(new TextDecoderStream())) {
      buffer += chunk;
      for (let end = buffer.indexOf("\n"); end >= 0; end = buffer.indexOf("\n")) {
        const line = buffer.slice(0, end).trim();
        buffer = buffer.slice(end + 1);
        if (!line) continue;
        const request = JSON.parse(line) as AttemptRequest | CancelRequest;
        if ("cancel" in request) {
          const at = pending.findIndex((p) => p.attempt === request.cancel);
          if (at >= 0) {
            pending.splice(at, 1);
            await control({ attempt: request.cancel, dropped: true });
          }
        } else {
          pending.push(request);
        }
        wake();
      }
    }
  })().finally(() => {
    ended = true;
    wake();
  });
  await control({ ready: true });
  for (;;) {
    const next = pending.shift();
    if (!next) {
      if (ended) break;
      await new Promise<void>((resolve) => (wake = resolve));
      continue;
    }
    await control({ attempt: next.attempt, started: true });
    const { code, stored } = await run(next.task, next.attempt);
    await control({ attempt: next.attempt, code, ...(stored ? { stored } : {}) });
  }
  await reading;
}
