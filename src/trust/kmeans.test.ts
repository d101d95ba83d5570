// Unit tests of kmeans2, every expected value worked out by hand.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { kmeans2 } from './kmeans.ts';

describe('kmeans2', () => {
  it('splits two clear groups', () => {
    // Start 0 | 10: 0, 1 nearer 0; 9, 10 nearer 10. Centres (0+1)/2 = 0.5 and
    // (9+10)/2 = 9.5; the labels do not change.
    assert.deepEqual(kmeans2([0, 1, 9, 10]), { low: 0.5, high: 9.5, labels: [0, 0, 1, 1] });
  });

  it('labels values in input order, not sorted order', () => {
    assert.deepEqual(kmeans2([10, 0, 9, 1]), { low: 0.5, high: 9.5, labels: [1, 0, 1, 0] });
  });

  it('gives one value as both centres', () => {
    assert.deepEqual(kmeans2([7]), { low: 7, high: 7, labels: [0] });
  });

  it('puts equal values in one cluster', () => {
    assert.deepEqual(kmeans2([3, 3, 3]), { low: 3, high: 3, labels: [0, 0, 0] });
  });

  it('splits two values into one each', () => {
    assert.deepEqual(kmeans2([7, 3]), { low: 3, high: 7, labels: [1, 0] });
  });

  it('sends an equidistant value to the low cluster', () => {
    // Start 0 | 10: 5 is 5 from each, so low. Centres (0+5)/2 = 2.5 and 10;
    // the midpoint 6.25 keeps 5 low. (Sent high it would give 0 and 7.5.)
    assert.deepEqual(kmeans2([0, 5, 10]), { low: 2.5, high: 10, labels: [0, 0, 1] });
  });

  it('iterates until the labels settle', () => {
    // Start 0 | 49: midpoint 24.5, so 0 and 23 low, the rest high.
    // Centres (0+23)/2 = 11.5 and (4*30+49)/5 = 169/5 = 33.8; midpoint 22.65,
    // so 23 moves high. Centres 0 and (23+4*30+49)/6 = 192/6 = 32; midpoint
    // 16 moves nothing.
    assert.deepEqual(kmeans2([0, 23, 30, 30, 30, 30, 49]), { low: 0, high: 32, labels: [0, 1, 1, 1, 1, 1, 1] });
  });

  it('handles negative values', () => {
    assert.deepEqual(kmeans2([-10, -9, 1, 0]), { low: -9.5, high: 0.5, labels: [0, 0, 1, 1] });
  });

  it('refuses empty and non-finite input', () => {
    assert.throws(() => kmeans2([]), /invariant violated/);
    assert.throws(() => kmeans2([1, Number.NaN]), /invariant violated/);
    assert.throws(() => kmeans2([1, Number.POSITIVE_INFINITY]), /invariant violated/);
  });
});
