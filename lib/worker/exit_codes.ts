/**
 * Worker exit codes. Backends and the Kubernetes pod failure policy use them
 * to tell a bug in the task apart from a failure of the infrastructure.
 *
 * @module
 */

/** The task ran and its result is stored. */
export const EXIT_OK = 0;
/** The task's own code threw; the error is stored as the attempt's result. Retrying will not help. */
export const EXIT_TASK_ERROR = 3;
/** The worker could not do its part (storage unreachable, bundle corrupt); a retry may help. */
export const EXIT_INFRASTRUCTURE = 75;
/** The worker was started with bad arguments; a retry will not help. */
export const EXIT_USAGE = 64;
/**
 * The attempt was stopped on request (SIGTERM: a preemption, a drain, a
 * container stop) before it stored a result; any checkpoint it made is kept.
 * 128 + SIGTERM, as a shell reports a process SIGTERM ended. Not the task's fault.
 */
export const EXIT_STOPPED = 143;
