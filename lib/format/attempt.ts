/**
 * Attempts as they are named in storage: an attempt of a task writes
 * `results/<task>/<attempt>.ok|.error`, and a batch backend's run map
 * (`runs/<name>.json`) says which attempt each index of the batch runs.
 *
 * @module
 */

/** One attempt at one task. */
export interface AttemptSpec {
  /** Task index. */
  task: number;
  /** Attempt id, unique within the job; the worker writes `results/<task>/<attempt>.*`. */
  attempt: string;
}

/** Contents of `jobs/<key>/runs/<name>.json`: what each index of a batch runs. */
export interface RunMap {
  /** The attempt index i of the batch runs. */
  attempts: AttemptSpec[];
}
