/**
 * An empty script: `deno run` of it is the floor of any process-per-task
 * design (the cost of starting Deno).
 *
 * @module
 */
