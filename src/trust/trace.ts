// Trace verification: compares the resource traces of a job's replicas and
// rejects those far from the rest. Time is normalised per trace on purpose: an
// honest but slower machine has the same shape, while a worker that sleeps
// instead of computing has near-zero CPU throughout.
import { assert } from '../types/errors.ts';
import { TRUST_DEFAULTS } from '../types/limits.ts';
import type { Trace, TraceSample } from '../types/model.ts';
import { kmeans2 } from './kmeans.ts';

/** Significant digits of the scores and centres named in a tie's reason. */
const REASON_SIGNIFICANT_DIGITS = 3;

/** Before its first sample, a trace is taken to rise from this point. */
const ORIGIN: TraceSample = { tMs: 0, cpuMs: 0, rssKb: 0 };

/** A trace at evenly spaced points of its run, one array per dimension. */
interface Resampled {
  cpuMs: number[];
  rssKb: number[];
}

/**
 * A trace resampled at `waypoints` evenly spaced points of its own run:
 * waypoint k (1..n) is at k/n of the trace's duration (its last sample's tMs),
 * values linearly interpolated between samples (before the first sample:
 * interpolate from (0,0)). A trace with no samples or zero duration gives all
 * zeros. Samples out of time order are put in order first (a stable sort), so
 * that a malformed trace is judged rather than crashing the verdict.
 */
export function resample(trace: Trace | null, waypoints: number): { cpuMs: number[]; rssKb: number[] } {
  assertWaypoints(waypoints);
  const samples = trace === null ? [] : [...trace.samples].sort((a, b) => a.tMs - b.tMs);
  const durationMs = samples.at(-1)?.tMs ?? 0;
  if (!(durationMs > 0)) return { cpuMs: zeros(waypoints), rssKb: zeros(waypoints) };
  const points = [ORIGIN, ...samples];
  const out: Resampled = { cpuMs: [], rssKb: [] };
  for (let k = 1; k <= waypoints; k++) {
    const at = sampleAt(points, (k / waypoints) * durationMs);
    out.cpuMs.push(at.cpuMs);
    out.rssKb.push(at.rssKb);
  }
  return out;
}

/**
 * Each trace's distance from the mean trace: resample all at `waypoints`; the
 * mean trace is the per-waypoint mean; each dimension is scaled by the largest
 * value of the mean trace in that dimension (1 if that is 0); a trace's score
 * is the mean over waypoints of the Euclidean distance (over the two scaled
 * dimensions) between it and the mean trace. A null trace counts as all zeros
 * (a worker that sends no trace looks like one that did nothing).
 */
export function traceScores(
  traces: readonly (Trace | null)[],
  waypoints: number = TRUST_DEFAULTS.traceWaypoints,
): number[] {
  assertWaypoints(waypoints);
  if (traces.length === 0) return [];
  const resampled = traces.map((t) => resample(t, waypoints));
  const meanCpu = meanCurve(resampled.map((r) => r.cpuMs));
  const meanRss = meanCurve(resampled.map((r) => r.rssKb));
  const cpuScale = scaleOf(meanCpu);
  const rssScale = scaleOf(meanRss);
  return resampled.map((r) => {
    let total = 0;
    for (let k = 0; k < waypoints; k++) {
      const dCpu = (at(r.cpuMs, k) - at(meanCpu, k)) / cpuScale;
      const dRss = (at(r.rssKb, k) - at(meanRss, k)) / rssScale;
      total += Math.hypot(dCpu, dRss);
    }
    return total / waypoints;
  });
}

export type TraceVerdict =
  | { kind: 'accept'; accepted: number[]; rejected: number[]; scores: number[]; low: number; high: number }
  | { kind: 'tie'; scores: number[]; low: number; high: number; reason: string };

/**
 * Scores the traces, splits the scores with kmeans2. When high - low <=
 * tolerance, every trace is accepted. Otherwise the larger cluster is accepted
 * and the other rejected (indices into `traces`, ascending); clusters of equal
 * size are a tie, with a reason that names both cluster sizes and centres. One
 * trace: accepted. No traces, or a negative or non-finite tolerance, is an
 * assert failure (the caller never asks).
 */
export function traceVerdict(
  traces: readonly (Trace | null)[],
  tolerance: number,
  waypoints: number = TRUST_DEFAULTS.traceWaypoints,
): TraceVerdict {
  assert(traces.length > 0, 'traceVerdict is given at least one trace');
  assert(Number.isFinite(tolerance) && tolerance >= 0, `trace tolerance >= 0 (got ${tolerance})`);
  const scores = traceScores(traces, waypoints);
  const { low, high, labels } = kmeans2(scores);
  if (high - low <= tolerance) {
    return { kind: 'accept', accepted: scores.map((_, i) => i), rejected: [], scores, low, high };
  }
  const lowIdx = indicesWith(labels, 0);
  const highIdx = indicesWith(labels, 1);
  if (lowIdx.length === highIdx.length) {
    return { kind: 'tie', scores, low, high, reason: tieReason(lowIdx.length, low, highIdx.length, high, tolerance) };
  }
  const [accepted, rejected] = lowIdx.length > highIdx.length ? [lowIdx, highIdx] : [highIdx, lowIdx];
  return { kind: 'accept', accepted, rejected, scores, low, high };
}

function assertWaypoints(waypoints: number): void {
  assert(Number.isInteger(waypoints) && waypoints >= 1, `trace waypoints is an integer >= 1 (got ${waypoints})`);
}

function zeros(n: number): number[] {
  return new Array<number>(n).fill(0);
}

function at(values: readonly number[], i: number): number {
  const v = values[i];
  assert(v !== undefined, `index ${i} is within ${values.length} values`);
  return v;
}

/** The trace's value at time `tMs` (0 < tMs <= last point's tMs), linearly interpolated. */
function sampleAt(points: readonly TraceSample[], tMs: number): { cpuMs: number; rssKb: number } {
  const i = points.findIndex((p, j) => j > 0 && p.tMs >= tMs);
  const next = points[i];
  const prev = points[i - 1];
  assert(next !== undefined && prev !== undefined, `a trace point lies at or after ${tMs} ms`);
  const spanMs = next.tMs - prev.tMs;
  const f = spanMs > 0 ? (tMs - prev.tMs) / spanMs : 1;
  return { cpuMs: lerp(prev.cpuMs, next.cpuMs, f), rssKb: lerp(prev.rssKb, next.rssKb, f) };
}

function lerp(a: number, b: number, f: number): number {
  return a + (b - a) * f;
}

/** Per-waypoint mean of equally long curves. */
function meanCurve(curves: readonly number[][]): number[] {
  const n = curves.length;
  const mean = zeros(curves[0]?.length ?? 0);
  for (const curve of curves) {
    for (let k = 0; k < mean.length; k++) mean[k] = at(mean, k) + at(curve, k) / n;
  }
  return mean;
}

/** The largest value of a mean curve, or 1 when that is 0 (a dimension nobody used). */
function scaleOf(mean: readonly number[]): number {
  const largest = mean.reduce((a, b) => Math.max(a, b), 0);
  return largest > 0 ? largest : 1;
}

function indicesWith(labels: readonly (0 | 1)[], label: 0 | 1): number[] {
  const out: number[] = [];
  labels.forEach((l, i) => {
    if (l === label) out.push(i);
  });
  return out;
}

function tieReason(lowCount: number, low: number, highCount: number, high: number, tolerance: number): string {
  return (
    `trace scores split evenly: ${lowCount} near ${fmt(low)} and ${highCount} near ${fmt(high)}` +
    ` (apart by more than the tolerance ${fmt(tolerance)})`
  );
}

function fmt(x: number): string {
  return String(Number(x.toPrecision(REASON_SIGNIFICANT_DIGITS)));
}
