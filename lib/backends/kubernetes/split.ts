/**
 * Maps wider than one Indexed Job allows. Kubernetes accepts at most
 * 100,000 completions per Indexed Job with a parallelism above 10,000
 * (v1.35 validation; KEP-3850 says larger workloads should use several
 * Jobs), so a batch of more attempts becomes several Jobs of one split
 * group: each its own run map and index range, the user's parallelism
 * shared among them so their sum never passes it. The earliest Jobs get it
 * first (results are yielded in input order); as a Job's remaining indexes
 * fall below its share, the next Jobs' parallelism is raised (a patch per
 * Job and per tenth of the parallelism, so the API calls stay a constant per
 * Job). Each Job carries {@linkcode SPLIT_ANNOTATION}, so a later master
 * finds the group again.
 *
 * @module
 */

/** Most completions kubeface puts into one Indexed Job. */
export const MAX_COMPLETIONS_PER_JOB = 100_000;

/** Annotation of a Job of a split group: `<group>/<position>/<parallelism of the group>`. */
export const SPLIT_ANNOTATION = "kubeface.dev/split";

/** Where a Job stands in its split group. */
export interface SplitPlace {
  /** The group (the name of its first Job). */
  group: string;
  /** Position of the Job in the group, from 0: earlier positions run earlier inputs. */
  position: number;
  /** Parallelism of the whole group. */
  parallelism: number;
}

/**
 * Cut attempts into Jobs of at most `max` each.
 *
 * @param items The attempts, in order.
 * @param max Most per Job.
 * @returns The chunks, in order; one when everything fits.
 * @throws {RangeError} `max` is not a whole number of 1 or more.
 */
export function splitAttempts<T>(items: readonly T[], max: number): T[][] {
  if (!Number.isInteger(max) || max < 1) {
    throw new RangeError(
      `Cannot split attempts into Jobs of ${max}: give a whole number of completions of 1 or more`,
    );
  }
  const chunks: T[][] = [];
  for (let i = 0; i < items.length; i += max) chunks.push(items.slice(i, i + max));
  return chunks;
}

/**
 * Share a group's parallelism among its Jobs, earliest first: a Job gets
 * as much as it still has indexes to run, until the parallelism is spent.
 *
 * @param parallelism The group's parallelism.
 * @param remaining Indexes each Job still has to run, in group order.
 * @returns Each Job's share; the shares add up to at most `parallelism`.
 */
export function shareParallelism(parallelism: number, remaining: readonly number[]): number[] {
  let left = parallelism;
  return remaining.map((count) => {
    const share = Math.min(count, left);
    left -= share;
    return share;
  });
}

/**
 * The annotation value of a Job of a split group.
 *
 * @param place Group, position and the group's parallelism.
 * @returns `<group>/<position>/<parallelism>`.
 */
export function splitAnnotation(place: SplitPlace): string {
  return `${place.group}/${place.position}/${place.parallelism}`;
}

/**
 * Read {@linkcode SPLIT_ANNOTATION}.
 *
 * @param value The annotation's value, if any.
 * @returns The Job's place, or `undefined` for a Job of no split group (or a malformed value).
 */
export function parseSplitAnnotation(value: string | undefined): SplitPlace | undefined {
  const match = value === undefined ? null : /^([a-z0-9-]+)\/(\d+)\/(\d+)$/.exec(value);
  if (!match) return undefined;
  return { group: match[1]!, position: Number(match[2]), parallelism: Number(match[3]) };
}
