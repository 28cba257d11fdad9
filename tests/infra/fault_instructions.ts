/**
 * The failure instructions of the GCS retry conformance tests
 * (googleapis/conformance-tests `storage/v1/retry_tests.json`), as
 * googleapis/storage-testbench implements them over HTTP, parsed for the
 * fault proxy, and the per-test instruction queues that apply them.
 *
 * | instruction                                 | what the proxy does                                                                                                      |
 * | ------------------------------------------- | ------------------------------------------------------------------------------------------------------------------------ |
 * | `return-X` (e.g. 503, 408, 429, 400, 401)   | answers X without forwarding                                                                                             |
 * | `return-reset-connection`                   | closes the connection without forwarding                                                                                 |
 * | `return-X-after-YK`                         | upload: the server keeps the first Y KiB of the object (a chunk is cut there), then the client gets X                   |
 * | `return-reset-connection-after-YK`          | the same, but the connection is closed unanswered; on a download, it breaks after Y KiB of the body                     |
 * | `return-broken-stream`                      | forwards, then closes the connection after a few bytes of the response body                                             |
 * | `return-broken-stream-after-YK`             | forwards, then closes the connection after Y KiB of the response body                                                   |
 * | `return-broken-stream-final-chunk-after-YB` | the final chunk of a resumable upload is forwarded (the object is made), the answer is cut after Y bytes of its body   |
 * | `stall-for-Ts-after-YK`                     | pauses T seconds after Y KiB of the upload (object offset) or of the response body; ends early if the client hangs up |
 *
 * `return-reset-connection-after-YK` is not in storage-testbench (whose
 * `return-X-after-YK` takes a status code); it is the connection-level twin
 * of `return-503-after-256K`.
 *
 * `redirect-send-token-T`, `redirect-send-handle-and-token-T` and
 * `return-X-if-dp-enforced` are gRPC-only in storage-testbench and have no
 * HTTP meaning; they are rejected.
 *
 * As in storage-testbench, an instruction is taken off its operation's queue
 * when it fires: `return-X` and `return-reset-connection` by the next request
 * of the operation; the others only by a request (or response) that reaches
 * their byte offset, so e.g. `return-broken-stream-after-256K` on
 * `storage.objects.get` passes over the small metadata request and breaks the
 * media download.
 *
 * @module
 */

/** One parsed instruction. */
export type Instruction =
  | { kind: "status"; status: number }
  | { kind: "reset" }
  | { kind: "status-after"; status: number; afterBytes: number }
  | { kind: "reset-after"; afterBytes: number }
  | { kind: "broken-stream"; afterBytes: number }
  | { kind: "broken-final-chunk"; afterBytes: number }
  | { kind: "stall"; seconds: number; afterBytes: number };

/** How many body bytes `return-broken-stream` lets through (storage-testbench: a few). */
export const BROKEN_STREAM_BYTES = 4;

/**
 * Parse an instruction of the conformance vocabulary.
 *
 * @throws {RangeError} The instruction is unknown or has no HTTP meaning.
 */
export function parseInstruction(text: string): Instruction {
  let match: RegExpExecArray | null;
  if ((match = /^return-(\d{3})$/.exec(text))) return { kind: "status", status: Number(match[1]) };
  if (text === "return-reset-connection") return { kind: "reset" };
  if ((match = /^return-(\d{3})-after-(\d+)K$/.exec(text))) {
    return { kind: "status-after", status: Number(match[1]), afterBytes: Number(match[2]) * 1024 };
  }
  if ((match = /^return-reset-connection-after-(\d+)K$/.exec(text))) {
    return { kind: "reset-after", afterBytes: Number(match[1]) * 1024 };
  }
  if (text === "return-broken-stream") {
    return { kind: "broken-stream", afterBytes: BROKEN_STREAM_BYTES };
  }
  if ((match = /^return-broken-stream-after-(\d+)K$/.exec(text))) {
    return { kind: "broken-stream", afterBytes: Number(match[1]) * 1024 };
  }
  if ((match = /^return-broken-stream-final-chunk-after-(\d+)B$/.exec(text))) {
    return { kind: "broken-final-chunk", afterBytes: Number(match[1]) };
  }
  if ((match = /^stall-for-(\d+)s-after-(\d+)K$/.exec(text))) {
    return { kind: "stall", seconds: Number(match[1]), afterBytes: Number(match[2]) * 1024 };
  }
  if (/^redirect-|-if-dp-enforced$/.test(text)) {
    throw new RangeError(
      `Cannot inject '${text}': storage-testbench applies it to gRPC only; the proxy speaks the JSON API over HTTP`,
    );
  }
  throw new RangeError(
    `Cannot inject '${text}': not an instruction of the retry conformance tests (e.g. return-503, return-reset-connection, return-503-after-256K, return-broken-stream-after-256K, stall-for-10s-after-256K)`,
  );
}

/** Instructions per operation, e.g. `{"storage.objects.insert": ["return-503-after-256K"]}`. */
export type InstructionSet = Record<string, readonly string[]>;

/** An instruction that fired, for assertions. */
export interface Fired {
  /** The operation it was queued for. */
  operation: string;
  /** The instruction text. */
  instruction: string;
  /** Request line of the request it hit, e.g. `PUT /upload/…`. */
  request: string;
}

/**
 * The queues of one retry test: what is left per operation, and what fired.
 */
export class InstructionQueues {
  #queues = new Map<string, { text: string; parsed: Instruction }[]>();
  /** Every instruction that fired, in order. */
  readonly fired: Fired[] = [];

  /**
   * Queue a test's instructions (parsed at once, so a typo fails the test
   * before any request).
   *
   * @throws {RangeError} An instruction is unknown or gRPC-only.
   */
  constructor(set: InstructionSet = {}) {
    for (const [operation, texts] of Object.entries(set)) {
      this.#queues.set(operation, texts.map((text) => ({ text, parsed: parseInstruction(text) })));
    }
  }

  /** The next instruction of an operation, without taking it. */
  peek(operation: string | undefined): Instruction | undefined {
    return operation === undefined ? undefined : this.#queues.get(operation)?.[0]?.parsed;
  }

  /** Take the next instruction of an operation off its queue, recording what it hit. */
  take(operation: string, request: string): void {
    const entry = this.#queues.get(operation)?.shift();
    if (entry) this.fired.push({ operation, instruction: entry.text, request });
  }

  /** What is left, per operation with instructions left. */
  remaining(): InstructionSet {
    return Object.fromEntries(
      [...this.#queues].filter(([, q]) => q.length > 0).map((
        [op, q],
      ) => [op, q.map((e) => e.text)]),
    );
  }
}
