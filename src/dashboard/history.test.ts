// GET /v1/history as chart columns: every step of the range is on the axis,
// a step with no row counts as nothing done.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { historyColumns, type HistoryPoint } from './history.ts';

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

  it('an answer with no points has no lines', () => {
    const cols = historyColumns({ step: 'minute', from: 0, to: MIN, points: [] });
    assert.deepEqual(cols.names, []);
  });
});
