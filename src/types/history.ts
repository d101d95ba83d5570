// Queue history: counts and time histograms per queue and minute (rolled up
// to hours), as the store keeps them and GET /v1/history returns them. The
// histogram buckets are fixed and log-scale, so that rows written by several
// coordinators, and minutes rolled up into hours, add bucket by bucket.

/**
 * Upper bounds (inclusive) of the histogram buckets, in ms: a time t falls in
 * the first bucket whose bound is >= t, or in the last (open) bucket past them
 * all. Eight buckets: <=10 ms, <=100 ms, <=1 s, <=10 s, <=1 min, <=10 min,
 * <=1 h, >1 h. The store's columns wait_b0..b7 and run_b0..b7 follow them.
 */
export const HISTORY_BUCKET_BOUNDS_MS = [10, 100, 1_000, 10_000, 60_000, 600_000, 3_600_000] as const;

/** The buckets' names, as GET /v1/history labels them. */
export const HISTORY_BUCKET_NAMES = ['le10ms', 'le100ms', 'le1s', 'le10s', 'le1m', 'le10m', 'le1h', 'gt1h'] as const;

export const HISTORY_BUCKETS = HISTORY_BUCKET_NAMES.length;

export const HISTORY_COUNTERS = ['submitted', 'succeeded', 'failed', 'lost', 'retried', 'cancelled'] as const;
export type HistoryCounter = (typeof HISTORY_COUNTERS)[number];

export const MINUTE_MS = 60_000;
export const HOUR_MS = 3_600_000;
export type HistoryStep = 'minute' | 'hour';
export const STEP_MS: Record<HistoryStep, number> = { minute: MINUTE_MS, hour: HOUR_MS };

/** A histogram of times: counts per bucket and the sum of the times. */
export interface TimeHistogram {
  buckets: number[];
  sumMs: number;
}

/** One queue's history for one step (a minute or an hour) starting at `at`. */
/**
 * Trust over time, per queue and step: results rejected by a verdict (lost a
 * vote, failed a trace or verifier check) and reliability checks failed.
 * Read from the attempts and checks themselves, so it covers what they keep.
 */
export interface TrustPoint {
  queue: string;
  /** Epoch ms, the start of the step. */
  at: number;
  invalid: number;
  failedChecks: number;
}

export interface HistoryPoint {
  queue: string;
  /** Start of the minute or hour, epoch ms. */
  at: number;
  counts: Record<HistoryCounter, number>;
  /** Ready (run_at) to leased, per attempt leased. */
  wait: TimeHistogram;
  /** Leased to finished, per attempt that reported a result or a failure. */
  run: TimeHistogram;
}

export function bucketOf(ms: number): number {
  for (let i = 0; i < HISTORY_BUCKET_BOUNDS_MS.length; i++) if (ms <= HISTORY_BUCKET_BOUNDS_MS[i]!) return i;
  return HISTORY_BUCKETS - 1;
}

export function emptyHistogram(): TimeHistogram {
  return { buckets: new Array<number>(HISTORY_BUCKETS).fill(0), sumMs: 0 };
}

export function emptyPoint(queue: string, at: number): HistoryPoint {
  const counts = Object.fromEntries(HISTORY_COUNTERS.map((k) => [k, 0])) as Record<HistoryCounter, number>;
  return { queue, at, counts, wait: emptyHistogram(), run: emptyHistogram() };
}

/** Adds a time to a histogram; negative times (clock skew between coordinators) count as 0. */
export function observe(h: TimeHistogram, ms: number): void {
  const t = Math.max(0, ms);
  h.buckets[bucketOf(t)]! += 1;
  h.sumMs += t;
}

/** The start of the step that holds `at`. */
export function stepStart(at: number, stepMs: number): number {
  return Math.floor(at / stepMs) * stepMs;
}

/** The answer of GET /v1/history. */
export interface HistoryAnswer {
  step: HistoryStep;
  from: number;
  to: number;
  buckets: { name: string; leMs: number | null }[];
  points: HistoryPoint[];
}

/** The answer of POST /v1/queues/:name/pause and /resume. */
export interface QueueStateAnswer {
  queue: string;
  paused: boolean;
  pausedAt: number | null;
  reason: string | null;
}
