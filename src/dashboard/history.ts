// GET /v1/history as chart columns: one line per queue, one point per step.

/** One queue's figures for one minute or hour starting at `at` (src/types/history.ts on the server). */
export interface HistoryPoint {
  queue: string;
  at: number;
  counts: Record<string, number>;
  wait: { buckets: number[]; sumMs: number };
  run: { buckets: number[]; sumMs: number };
}

export type HistoryAnswer = { points?: HistoryPoint[]; step?: string; from?: number; to?: number; [more: string]: unknown } | HistoryPoint[];

const STEP_MS: Record<string, number> = { minute: 60_000, hour: 3_600_000 };
/** Most steps drawn; the server answers at most historyMaxPoints (1440) anyway. */
export const HISTORY_MAX_STEPS = 1440;

/** The points of the answer, wherever it keeps its array of points. */
export function historyPoints(answer: HistoryAnswer): HistoryPoint[] {
  if (Array.isArray(answer)) return answer;
  if (Array.isArray(answer.points)) return answer.points;
  const arr = Object.values(answer).find((v) => Array.isArray(v) && v.length > 0 && typeof v[0] === 'object' && v[0] !== null && 'at' in v[0]);
  return (arr as HistoryPoint[] | undefined) ?? [];
}

export interface HistoryColumns {
  names: string[];
  succeeded: (number | null)[][];
  /** failed jobs + lost attempts per step. */
  failedLost: (number | null)[][];
  /** The bucket bound under which the quantile asked for (95 % by default) of the step's run times fall (an upper estimate), ms. */
  runP95Ms: (number | null)[][];
  waitP95Ms: (number | null)[][];
  runMeanMs: (number | null)[][];
  waitMeanMs: (number | null)[][];
}

/** Every step from the answer's `from` to its `to`: a step with no row had nothing happen in it. */
function stepTimes(answer: HistoryAnswer, points: HistoryPoint[]): number[] {
  const ats = points.map((p) => p.at);
  const stepMs = (!Array.isArray(answer) && answer.step && STEP_MS[answer.step]) || STEP_MS.minute!;
  const from = !Array.isArray(answer) && typeof answer.from === 'number' ? answer.from : Math.min(...ats);
  const to = !Array.isArray(answer) && typeof answer.to === 'number' ? answer.to : Math.max(...ats);
  const first = Math.floor(from / stepMs) * stepMs;
  const times: number[] = [];
  for (let t = first; t <= to && times.length < HISTORY_MAX_STEPS; t += stepMs) times.push(t);
  for (const at of ats) if (!times.includes(at)) times.push(at);
  return times.sort((a, b) => a - b);
}

/** The histogram buckets' upper bounds (src/types/history.ts on the server); the last is open. */
export const BUCKET_BOUNDS_MS = [10, 100, 1000, 10_000, 60_000, 600_000, 3_600_000];

/**
 * The upper bound of the bucket holding quantile q: no more than that share
 * of the times exceed it. The open last bucket answers its lower bound.
 */
export function bucketQuantile(buckets: number[], q: number, bounds: readonly number[] = BUCKET_BOUNDS_MS): number | null {
  const n = buckets.reduce((a, b) => a + b, 0);
  if (n === 0) return null;
  let seen = 0;
  for (let i = 0; i < buckets.length; i++) {
    seen += buckets[i]!;
    if (seen >= q * n) return bounds[i] ?? bounds[bounds.length - 1]!;
  }
  return null;
}

export function historyColumns(answer: HistoryAnswer, quantile = 0.95): HistoryColumns {
  const points = historyPoints(answer);
  const given = Array.isArray(answer) ? undefined : (answer.buckets as { leMs: number | null }[] | undefined);
  const bounds = given ? given.map((b) => b.leMs).filter((v): v is number => typeof v === 'number') : BUCKET_BOUNDS_MS;
  const names = [...new Set(points.map((p) => p.queue))].sort();
  const times = points.length === 0 ? [] : stepTimes(answer, points);
  const at = new Map(points.map((p) => [`${p.queue}\u0000${p.at}`, p]));
  const col = (f: (p: HistoryPoint) => number | null, missing: number | null) =>
    names.map((n) => times.map((t) => { const p = at.get(`${n}\u0000${t}`); return p ? f(p) : missing; }));
  const t = times.map((ms) => ms / 1000);
  const count = (h: { buckets: number[] }): number => h.buckets.reduce((a, b) => a + b, 0);
  const mean = (h: { buckets: number[]; sumMs: number }): number | null => (count(h) > 0 ? h.sumMs / count(h) : null);
  return {
    names,
    succeeded: [t, ...col((p) => p.counts.succeeded ?? 0, 0)],
    failedLost: [t, ...col((p) => (p.counts.failed ?? 0) + (p.counts.lost ?? 0), 0)],
    runP95Ms: [t, ...col((p) => bucketQuantile(p.run.buckets, quantile, bounds), null)],
    waitP95Ms: [t, ...col((p) => bucketQuantile(p.wait.buckets, quantile, bounds), null)],
    runMeanMs: [t, ...col((p) => mean(p.run), null)],
    waitMeanMs: [t, ...col((p) => mean(p.wait), null)],
  };
}
