// Unit tests of trace resampling, scoring and verdicts, every expected value
// worked out by hand.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Trace, TraceSample } from '../types/model.ts';
import { resample, traceScores, traceVerdict } from './trace.ts';

const EPSILON = 1e-12;

function trace(samples: [tMs: number, cpuMs: number, rssKb: number][]): Trace {
  return { intervalMs: 100, samples: samples.map(([tMs, cpuMs, rssKb]): TraceSample => ({ tMs, cpuMs, rssKb })) };
}

function assertNear(actual: readonly number[], expected: readonly number[]): void {
  assert.equal(actual.length, expected.length, `${actual} vs ${expected}`);
  actual.forEach((a, i) => assert.ok(Math.abs(a - (expected[i] ?? NaN)) < EPSILON, `${actual} vs ${expected}`));
}

// Two honest runs of the same work, one on a machine twice as slow, and a
// worker that sleeps instead of computing (memory held, no CPU).
const HONEST_FAST = trace([[100, 100, 1000], [200, 200, 1000]]);
const HONEST_SLOW = trace([[200, 100, 1000], [400, 200, 1000]]);
const SLEEPER = trace([[100, 0, 1000], [200, 0, 1000]]);

describe('resample', () => {
  const linear = trace([[100, 50, 10], [200, 100, 20], [400, 200, 20]]);

  it('reads a trace at evenly spaced points of its run', () => {
    // Waypoints at 100, 200, 300, 400 ms; 300 is halfway from 200 to 400.
    assert.deepEqual(resample(linear, 4), { cpuMs: [50, 100, 150, 200], rssKb: [10, 20, 20, 20] });
  });

  it('rises from (0, 0) before the first sample', () => {
    // Waypoints every 50 ms; at 50 ms: halfway from (0, 0) to (50, 10).
    assert.deepEqual(resample(linear, 8), {
      cpuMs: [25, 50, 75, 100, 125, 150, 175, 200],
      rssKb: [5, 10, 15, 20, 20, 20, 20, 20],
    });
  });

  it('uses a sample at 0 ms instead of the origin', () => {
    // At 50 ms: halfway from (0, 1000) to (100, 1000).
    assert.deepEqual(resample(trace([[0, 0, 1000], [100, 100, 1000]]), 2), { cpuMs: [50, 100], rssKb: [1000, 1000] });
  });

  it('normalises time: a slower run of the same shape resamples the same', () => {
    assert.deepEqual(resample(HONEST_SLOW, 2), resample(HONEST_FAST, 2));
    assert.deepEqual(resample(HONEST_FAST, 2), { cpuMs: [100, 200], rssKb: [1000, 1000] });
  });

  it('puts samples out of time order in order', () => {
    const reversed = trace([[400, 200, 20], [200, 100, 20], [100, 50, 10]]);
    assert.deepEqual(resample(reversed, 4), resample(linear, 4));
  });

  it('gives zeros for no trace, no samples and zero duration', () => {
    const zeros = { cpuMs: [0, 0, 0], rssKb: [0, 0, 0] };
    assert.deepEqual(resample(null, 3), zeros);
    assert.deepEqual(resample(trace([]), 3), zeros);
    assert.deepEqual(resample(trace([[0, 5, 5]]), 3), zeros);
  });

  it('refuses fewer than one waypoint', () => {
    assert.throws(() => resample(null, 0), /invariant violated/);
    assert.throws(() => resample(null, 1.5), /invariant violated/);
  });
});

describe('traceScores', () => {
  it('scores two honest traces and a missing one (one waypoint, CPU only)', () => {
    // Honest CPU 300, missing 0: mean 200, scale 200. Scaled: honest 1.5,
    // mean 1, missing 0. Scores |1.5 - 1| = 0.5 and |0 - 1| = 1.
    const honest = trace([[1000, 300, 0]]);
    assert.deepEqual(traceScores([honest, honest, null], 1), [0.5, 0.5, 1]);
  });

  it('scores over both dimensions and averages over waypoints', () => {
    // Honest at waypoints 50, 100 ms: CPU (50, 100), RSS (500, 1000). Mean
    // with a zero trace: CPU (100/3, 200/3), RSS (1000/3, 2000/3); scales
    // 200/3 and 2000/3. Scaled: honest (0.75, 1.5), mean (0.5, 1) in both
    // dimensions. Honest: distances 0.25*sqrt2 and 0.5*sqrt2, mean 0.375*sqrt2.
    // Zero: distances 0.5*sqrt2 and 1*sqrt2, mean 0.75*sqrt2.
    const honest = trace([[100, 100, 1000]]);
    const zero = trace([[100, 0, 0]]);
    assertNear(traceScores([honest, honest, zero], 2), [0.375 * Math.SQRT2, 0.375 * Math.SQRT2, 0.75 * Math.SQRT2]);
  });

  it('scores identical traces 0', () => {
    assert.deepEqual(traceScores([HONEST_FAST, HONEST_SLOW], 2), [0, 0]);
  });

  it('scores traces that are all missing 0', () => {
    // Mean all zeros, scales 1.
    assert.deepEqual(traceScores([null, null], 4), [0, 0]);
  });

  it('uses TRUST_DEFAULTS.traceWaypoints by default', () => {
    assert.deepEqual(traceScores([HONEST_FAST]), [0]);
    assert.deepEqual(traceScores([]), []);
  });
});

describe('traceVerdict', () => {
  it('accepts two honest traces and rejects a sleeper', () => {
    // Waypoints at 1/2 and all of each run: honest CPU (100, 200), sleeper
    // (0, 0); RSS 1000 throughout for all, so it adds nothing. Mean CPU
    // (200/3, 400/3), scale 400/3. Scaled: honest (0.75, 1.5), mean (0.5, 1),
    // sleeper (0, 0). Honest (0.25 + 0.5) / 2 = 0.375; sleeper
    // (0.5 + 1) / 2 = 0.75. Apart by 0.375 > 0.2: the two honest win.
    const verdict = traceVerdict([HONEST_FAST, SLEEPER, HONEST_SLOW], 0.2, 2);
    assert.ok(verdict.kind === 'accept', verdict.kind);
    assert.deepEqual(verdict.accepted, [0, 2]);
    assert.deepEqual(verdict.rejected, [1]);
    assertNear(verdict.scores, [0.375, 0.75, 0.375]);
    assertNear([verdict.low, verdict.high], [0.375, 0.75]);
  });

  it('accepts every trace when the clusters are within the tolerance', () => {
    const verdict = traceVerdict([HONEST_FAST, SLEEPER, HONEST_SLOW], 0.5, 2);
    assert.ok(verdict.kind === 'accept');
    assert.deepEqual(verdict.accepted, [0, 1, 2]);
    assert.deepEqual(verdict.rejected, []);
  });

  it('accepts every trace when the clusters are exactly the tolerance apart', () => {
    // Scores 0.5, 0.5, 1 (see traceScores): apart by exactly 0.5.
    const honest = trace([[1000, 300, 0]]);
    const verdict = traceVerdict([honest, honest, null], 0.5, 1);
    assert.deepEqual(verdict, { kind: 'accept', accepted: [0, 1, 2], rejected: [], scores: [0.5, 0.5, 1], low: 0.5, high: 1 });
  });

  it('accepts the larger cluster even when it is the far one', () => {
    // CPU 0, 0, 50, 100, 100 at one waypoint: mean 50, scale 50. Scores 1, 1,
    // 0, 1, 1: four far from the mean in two camps, one at it.
    const cpu = (c: number): Trace => trace([[1000, c, 0]]);
    const verdict = traceVerdict([cpu(0), cpu(0), cpu(50), cpu(100), cpu(100)], 0.2, 1);
    assert.deepEqual(verdict, { kind: 'accept', accepted: [0, 1, 3, 4], rejected: [2], scores: [1, 1, 0, 1, 1], low: 0, high: 1 });
  });

  it('calls two clusters of two a tie', () => {
    // CPU 100, 300, 0, 400 at one waypoint: mean 200, scale 200. Scores
    // 0.5, 0.5, 1, 1: two near 0.5, two near 1.
    const cpu = (c: number): Trace => trace([[1000, c, 0]]);
    const verdict = traceVerdict([cpu(100), cpu(300), cpu(0), cpu(400)], 0.2, 1);
    assert.ok(verdict.kind === 'tie');
    assert.deepEqual(verdict.scores, [0.5, 0.5, 1, 1]);
    assert.equal(verdict.low, 0.5);
    assert.equal(verdict.high, 1);
    assert.match(verdict.reason, /2 near 0\.5 and 2 near 1\b/);
    assert.match(verdict.reason, /tolerance 0\.2/);
  });

  it('accepts a single trace, even a missing one', () => {
    assert.deepEqual(traceVerdict([SLEEPER], 0, 2), { kind: 'accept', accepted: [0], rejected: [], scores: [0], low: 0, high: 0 });
    assert.deepEqual(traceVerdict([null], 0), { kind: 'accept', accepted: [0], rejected: [], scores: [0], low: 0, high: 0 });
  });

  it('refuses no traces and a negative tolerance', () => {
    assert.throws(() => traceVerdict([], 0.2), /invariant violated/);
    assert.throws(() => traceVerdict([null], -1), /invariant violated/);
  });
});
