// Small helpers of the scale runs: summaries of samples, ports, waits, and
// what runs at exit.
import { freePort } from '../../src/store/postgres/cluster.ts';

export { freePort };

/** A summary of timings in milliseconds. */
export interface Summary {
  n: number;
  meanMs: number;
  p50Ms: number;
  p99Ms: number;
  minMs: number;
  maxMs: number;
}

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export function summarize(samplesMs: readonly number[]): Summary {
  const sorted = [...samplesMs].sort((a, b) => a - b);
  const sum = sorted.reduce((a, b) => a + b, 0);
  return {
    n: sorted.length,
    meanMs: sorted.length === 0 ? NaN : sum / sorted.length,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    minMs: sorted[0] ?? NaN,
    maxMs: sorted[sorted.length - 1] ?? NaN,
  };
}

export function median(values: readonly number[]): number {
  return percentile([...values].sort((a, b) => a - b), 50);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Milliseconds since `t0` (performance.now() time). */
export function since(t0: number): number {
  return performance.now() - t0;
}

/** Progress lines go to stderr, so that stdout carries the report alone. */
export function note(message: string): void {
  process.stderr.write(`[scale ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

const exitHooks = new Set<() => void>();
let hooked = false;

/**
 * Runs `fn` (synchronous: a process is exiting) when this process exits, is
 * interrupted or terminated, so that no server or coordinator it started
 * outlives it. Returns a function that removes the hook.
 */
export function onExit(fn: () => void): () => void {
  exitHooks.add(fn);
  if (!hooked) {
    hooked = true;
    const runAll = (): void => {
      for (const f of [...exitHooks]) {
        exitHooks.delete(f);
        try {
          f();
        } catch {
          // best effort: the process is going away
        }
      }
    };
    process.once('exit', runAll);
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      process.once(signal, () => {
        runAll();
        process.exit(signal === 'SIGINT' ? 130 : 143);
      });
    }
  }
  return () => void exitHooks.delete(fn);
}

/** A number for a table: thousands separated, small values with their decimals. */
export function fmt(v: number | null | undefined, digits?: number): string {
  if (v === null || v === undefined) return '–';
  if (!Number.isFinite(v)) return String(v);
  if (digits !== undefined) return v.toFixed(digits);
  if (Math.abs(v) >= 100) return Math.round(v).toLocaleString('en-US');
  if (Math.abs(v) >= 10) return v.toFixed(1);
  if (Math.abs(v) >= 1) return v.toFixed(2);
  return v.toFixed(3);
}

export function count(n: number): string {
  return n.toLocaleString('en-US');
}

/** `p`, or a rejection naming `what` once `ms` have passed: every wait of a scale run ends. */
export async function withBound<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms / 1000} s`)), ms);
  });
  try {
    return await Promise.race([p, bound]);
  } finally {
    clearTimeout(timer);
  }
}
