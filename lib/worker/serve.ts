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
  lines,
} from "./protocol.ts";
import type { AttemptOutcome } from "./run.ts";

/** Runs one attempt; returns its exit code. */
export type RunAttempt = (request: AttemptRequest) => Promise<AttemptOutcome>;

/**
 * Serve requests from `input` until it ends, writing control lines with
 * `write`. An attempt's end and the next one's start go out in one write.
 */
export async function serve(
  run: RunAttempt,
  input: ReadableStream<Uint8Array>,
  write: (text: string) => unknown,
): Promise<void> {
  let out = "";
  const control = (message: ControlMessage) => {
    out += `${CONTROL_PREFIX}${JSON.stringify(message)}\n`;
  };
  const flush = () => {
    if (out) write(out);
    out = "";
  };
  const pending: AttemptRequest[] = [];
  let ended = false;
  let wake = () => {};
  const reading = (async () => {
    for await (const text of lines(input)) {
      const line = text.trim();
      if (!line) continue;
      const request = JSON.parse(line) as AttemptRequest | CancelRequest;
      if ("cancel" in request) {
        const at = pending.findIndex((p) => p.attempt === request.cancel);
        if (at >= 0) {
          pending.splice(at, 1);
          control({ attempt: request.cancel, dropped: true });
          flush();
        }
      } else {
        pending.push(request);
      }
      wake();
    }
  })().finally(() => {
    ended = true;
    wake();
  });
  control({ ready: true });
  for (;;) {
    const next = pending.shift();
    if (!next) {
      flush();
      if (ended) break;
      await new Promise<void>((resolve) => (wake = resolve));
      continue;
    }
    control({ attempt: next.attempt, started: true });
    flush();
    const { code } = await run(next);
    control({ attempt: next.attempt, code });
  }
  await reading;
}
