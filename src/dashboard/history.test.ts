// GET /v1/history as chart columns: every step of the range is on the axis,
// a step with no row counts as nothing done.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bucketQuantile, historyColumns, type HistoryPoint } from './history.ts';

const MIN = 60_000;
const point = (queue: string, at: number, succeeded: number, runMs: number[]): HistoryPoint => ({
  queue,
  at,
  counts: { submitted: succeeded, succeeded, failed: 0 },
  wait: { buckets: [], sumMs: 0 },
  run: { buckets: [runMs.length], sumMs: runMs.reduce((a, b) => a + b, 0) },
});

describe('history columns', () => {
  it('puts every minute of the range on the axis, one line per queue', () => {
    const from = 100 * MIN;
    const cols = historyColumns({ step: 'minute', from, to: from + 3 * MIN + 5, points: [point('b', from + MIN, 4, [10, 30]), point('a', from + 3 * MIN, 2, [5])] });
    assert.deepEqual(cols.names, ['a', 'b']);
    assert.deepEqual(cols.succeeded[0], [0, 1, 2, 3].map((i) => (from + i * MIN) / 1000));
    assert.deepEqual(cols.succeeded.slice(1), [[0, 0, 0, 2], [0, 4, 0, 0]]);
    assert.deepEqual(cols.runMeanMs.slice(1), [[null, null, null, 5], [null, 20, null, null]]);
  });

  it('reads the 95th percentile as the bound of the bucket that holds it, and adds failed and lost', () => {
    const p: HistoryPoint = { queue: 'a', at: 0, counts: { succeeded: 1, failed: 2, lost: 1 }, wait: { buckets: [19, 1], sumMs: 0 }, run: { buckets: [0, 0, 18, 2], sumMs: 0 } };
    const cols = historyColumns({ step: 'minute', from: 0, to: MIN - 1, points: [p] });
    assert.deepEqual(cols.waitP95Ms[1], [10]);
    assert.deepEqual(cols.runP95Ms[1], [10_000], '18 of 20 under 1 s: the 95th is in the next bucket');
    assert.deepEqual(cols.failedLost[1], [3]);
    assert.equal(bucketQuantile([0, 0, 0, 0, 0, 0, 0, 5], 0.5), 3_600_000, 'the open bucket answers its lower bound');
    assert.equal(bucketQuantile([], 0.5), null);
  });

  it('an answer with no points has no lines', () => {
    const cols = historyColumns({ step: 'minute', from: 0, to: MIN, points: [] });
    assert.deepEqual(cols.names, []);
  });
});
