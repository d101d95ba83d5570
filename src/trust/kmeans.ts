// One-dimensional k-means with two clusters: splits a list of scores into the
// smaller and the larger ones. Deterministic (no random start), so a verdict
// built on it replays exactly.
import { assert } from '../types/errors.ts';

/** Lloyd's algorithm stops here even if the labels still change (in 1-D it settles long before). */
const KMEANS_MAX_ITERATIONS = 100;

const LOW = 0;
const HIGH = 1;

export interface TwoClusters {
  /** Centre of the cluster of smaller values, and of larger values (equal when all values are equal). */
  low: number;
  high: number;
  /** Per input value: 0 = low cluster, 1 = high cluster (all 0 when low === high). */
  labels: (0 | 1)[];
}

/**
 * 1-D k-means with k = 2 (Lloyd's algorithm), deterministic: starts from min
 * and max, iterates until the labels stop changing (bounded by
 * KMEANS_MAX_ITERATIONS). A value equidistant between the two centres goes to
 * the low cluster. Empty input -> assert failure (caller never passes empty).
 * One value -> low = high = value, labels [0]. All equal -> one cluster (all
 * labels 0). Non-finite values -> assert failure.
 */
export function kmeans2(values: readonly number[]): TwoClusters {
  assert(values.length > 0, 'kmeans2 is given at least one value');
  for (const v of values) assert(Number.isFinite(v), `kmeans2 is given finite values (got ${v})`);
  const min = values.reduce((a, b) => Math.min(a, b));
  const max = values.reduce((a, b) => Math.max(a, b));
  if (min === max) return { low: min, high: max, labels: values.map(() => LOW) };

  let labels = assign(values, min, max);
  let centres = centresOf(values, labels);
  for (let i = 1; i < KMEANS_MAX_ITERATIONS; i++) {
    const next = assign(values, centres.low, centres.high);
    if (sameLabels(labels, next)) break;
    labels = next;
    centres = centresOf(values, labels);
  }
  return { low: centres.low, high: centres.high, labels };
}

/** Each value to its nearer centre; a tie goes to the low cluster. */
function assign(values: readonly number[], low: number, high: number): (0 | 1)[] {
  return values.map((v) => (Math.abs(v - low) <= Math.abs(v - high) ? LOW : HIGH));
}

function centresOf(values: readonly number[], labels: readonly (0 | 1)[]): { low: number; high: number } {
  return { low: meanOf(values, labels, LOW), high: meanOf(values, labels, HIGH) };
}

/** Mean of the values carrying `label`. From min and max, neither cluster ever empties. */
function meanOf(values: readonly number[], labels: readonly (0 | 1)[], label: 0 | 1): number {
  let sum = 0;
  let count = 0;
  values.forEach((v, i) => {
    if (labels[i] === label) {
      sum += v;
      count++;
    }
  });
  assert(count > 0, `kmeans2: cluster ${label} is not empty`);
  return sum / count;
}

function sameLabels(a: readonly (0 | 1)[], b: readonly (0 | 1)[]): boolean {
  return a.every((label, i) => label === b[i]);
}
