/**
 * Writes one pod's status with strategic-merge patches, one request at a time: bursts of
 * changes coalesce into one write of the newest state, and transient failures are retried.
 *
 * @module
 */

import { type CoreV1Api, PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";

/** Options of {@link StatusWriter}. */
export interface StatusWriterOptions {
  core: CoreV1Api;
  namespace: string;
  name: string;
  /** Builds the patch body of the current state; called right before each write. */
  build: () => Record<string, unknown>;
  log: (line: string) => void;
}

const MAX_ATTEMPTS = 6;

/** Serialised, coalescing status writes of one pod. */
export class StatusWriter {
  readonly #options: StatusWriterOptions;
  #writing: Promise<void> | undefined;
  #dirty = false;
  #gone = false;

  /** @param options The API client, the pod, the patch builder and a logger. */
  constructor(options: StatusWriterOptions) {
    this.#options = options;
  }

  /** Whether the pod no longer exists (or the writer was stopped); nothing is written then. */
  get gone(): boolean {
    return this.#gone;
  }

  /** Stop writing (the pod is gone or the agent shuts down). */
  stop(): void {
    this.#gone = true;
  }

  /**
   * Write the current state.
   *
   * @returns Once a write that includes the state at the time of the call has finished.
   */
  report(): Promise<void> {
    this.#dirty = true;
    this.#writing ??= this.#flush().finally(() => (this.#writing = undefined));
    return this.#writing;
  }

  /** @returns Once the write in flight, if any, has finished. */
  async settled(): Promise<void> {
    await this.#writing;
  }

  async #flush(): Promise<void> {
    const { core, namespace, name, build, log } = this.#options;
    let failures = 0;
    while (this.#dirty && !this.#gone) {
      this.#dirty = false;
      try {
        await core.patchNamespacedPodStatus(
          { name, namespace, body: build() },
          setHeaderOptions("Content-Type", PatchStrategy.StrategicMergePatch),
        );
        failures = 0;
      } catch (error) {
        const code = (error as { code?: number }).code;
        if (code === 404) {
          this.#gone = true;
          return;
        }
        log(`status update failed (${code}): ${(error as Error).message?.slice(0, 500)}`);
        const permanent = code !== undefined && code >= 400 && code < 500 && code !== 409 &&
          code !== 429;
        if (permanent || ++failures >= MAX_ATTEMPTS) return;
        this.#dirty = true;
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }
  }
}
