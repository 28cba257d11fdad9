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
  type StopRequest,
} from "./protocol.ts";
import type { AttemptOutcome } from "./run.ts";

/** Runs one attempt; returns its exit code. */
export type RunAttempt = (request: AttemptRequest) => Promise<AttemptOutcome>;

/** Options of {@linkcode serve}. */
export interface ServeOptions {
  /** Stop the running attempt `attempt` (a {@linkcode StopRequest}): fire its task's signal. */
  stop?: (attempt: string, reason: string) => void;
  /** Once aborted, start no further attempt: end after the running one. */
  signal?: AbortSignal;
}

/**
 * Serve requests from `input` until it ends, writing control lines with
 * `write`. An attempt's end and the next one's start go out in one write.
 */
export async function serve(
  run: RunAttempt,
  input: ReadableStream<Uint8Array>,
  write: (text: string) => unknown,
  options: ServeOptions = {},
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
  let running: string | undefined;
  let wake = () => {};
  options.signal?.addEventListener("abort", () => wake(), { once: true });
  const reading = (async () => {
    for await (const text of lines(input)) {
      const line = text.trim();
      if (!line) continue;
      const request = JSON.parse(line) as AttemptRequest | CancelRequest | StopRequest;
      if ("cancel" in request || "stop" in request) {
        const id = "cancel" in request ? request.cancel : request.stop;
        const at = pending.findIndex((p) => p.attempt === id);
        if (at >= 0) {
          pending.splice(at, 1);
          control({ attempt: id, dropped: true });
          flush();
        } else if ("stop" in request && running === id) {
          options.stop?.(id, request.reason ?? "kubeface is stopping this attempt");
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
    const next = options.signal?.aborted ? undefined : pending.shift();
    if (!next) {
      flush();
      if (ended || options.signal?.aborted) break;
      await new Promise<void>((resolve) => (wake = resolve));
      continue;
    }
    control({ attempt: next.attempt, started: true });
    flush();
    running = next.attempt;
    const { code } = await run(next);
    running = undefined;
    control({ attempt: next.attempt, code });
  }
  if (!options.signal?.aborted) await reading;
}
