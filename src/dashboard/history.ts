// GET /v1/history as chart columns: one line per queue, one point per step.

/** One queue's figures for one minute or hour starting at `at` (src/types/history.ts on the server). */
export interface HistoryPoint {
  queue: string;
  at: number;
  counts: Record<string, number>;
  wait: { buckets: number[]; sumMs: number };
  run: { buckets: number[]; sumMs: number };
}

export type HistoryAnswer = { points?: HistoryPoint[]; [more: string]: unknown } | HistoryPoint[];

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
  runMeanMs: (number | null)[][];
}

export function historyColumns(answer: HistoryAnswer): HistoryColumns {
  const points = historyPoints(answer);
  const names = [...new Set(points.map((p) => p.queue))].sort();
  const times = [...new Set(points.map((p) => p.at))].sort((a, b) => a - b);
  const at = new Map(points.map((p) => [`${p.queue}\u0000${p.at}`, p]));
  const col = (f: (p: HistoryPoint) => number | null) => names.map((n) => times.map((t) => { const p = at.get(`${n}\u0000${t}`); return p ? f(p) : null; }));
  const t = times.map((ms) => ms / 1000);
  const runCount = (p: HistoryPoint): number => p.run.buckets.reduce((a, b) => a + b, 0);
  return {
    names,
    succeeded: [t, ...col((p) => p.counts.succeeded ?? 0)],
    runMeanMs: [t, ...col((p) => (runCount(p) > 0 ? p.run.sumMs / runCount(p) : null))],
  };
}
