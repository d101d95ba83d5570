// The worker-ratio advisor's inputs, read through the store: run times of the
// attempts that finished in the window, the jobs submitted in it, the edges
// between queues among recent jobs, and the slots of the workers that count.
// The maths is the scheduler's (scheduler/advisor.ts); docs/advisor.md.
import { advise, type Advice, type AdviceEdgeInput, type AdvicePhaseInput } from '../scheduler/advisor.ts';
import type { QueueEdge, Store } from '../store/store.ts';
import { LIMITS } from '../types/limits.ts';
import type { Worker } from '../types/model.ts';

export interface AdviceReport extends Advice {
  /** The time the advice was worked out at. */
  at: number;
  /** How far back it looked. */
  windowMs: number;
  /** Workers whose slots it counted: connected, not draining, not quarantined. */
  workersCounted: number;
  /** The edges between queues it found, among the sampled jobs. */
  edges: QueueEdge[];
  /** True when the edge read was cut at LIMITS.adviceEdgesMaxRows. */
  edgesTruncated: boolean;
}

/** A worker whose slots count: it gets work now and keeps getting it. */
export function countsForAdvice(w: Worker): boolean {
  return w.connected && w.state !== 'offline' && !w.draining && !w.quarantined;
}

export async function buildAdvice(store: Store, now: number, windowMs: number): Promise<AdviceReport> {
  const sinceMs = now - windowMs;
  const [counts, allWorkers, edges] = await Promise.all([
    store.queueCounts(),
    store.listWorkers(),
    store.queueEdges({ sinceMs, sampleMaxJobs: LIMITS.adviceEdgesSampleMaxJobs, maxRows: LIMITS.adviceEdgesMaxRows }),
  ]);
  const workers = allWorkers.filter(countsForAdvice);
  const queues = [...new Set([...counts.map((c) => c.queue), ...workers.flatMap((w) => Object.keys(w.queues))])].sort();
  const phases = await phaseInputs(store, queues, now, sinceMs);
  const advice = advise({
    phases,
    edges: edges.edges.map((e): AdviceEdgeInput => ({ from: e.from, to: e.to, children: e.children, fromJobs: e.fromJobs })),
    workers: workers.map((w) => ({ name: w.name || w.id, queues: w.queues })),
    addWorkersMax: LIMITS.adviceAddWorkersMax,
  });
  return { at: now, windowMs, workersCounted: workers.length, ...advice, edges: edges.edges, edgesTruncated: edges.truncated };
}

async function phaseInputs(store: Store, queues: readonly string[], now: number, sinceMs: number): Promise<AdvicePhaseInput[]> {
  const [stats, arrivals] = await Promise.all([
    store.queueStats({ queues, sinceMs, sampleMaxRows: LIMITS.queueStatsSampleMaxRows }),
    store.queueArrivals({ queues, sinceMs, sampleMaxRows: LIMITS.adviceArrivalsSampleMaxRows }),
  ]);
  const statsOf = new Map(stats.map((s) => [s.queue, s]));
  const arrivalsOf = new Map(arrivals.map((a) => [a.queue, a]));
  return queues.map((queue) => {
    const a = arrivalsOf.get(queue);
    return {
      queue,
      runTimeMeanMs: statsOf.get(queue)?.runTimeMeanMs ?? null,
      submitted: a?.submitted ?? 0,
      arrivalsSpanMs: Math.max(1, now - (a?.sampledSinceMs ?? sinceMs)),
    };
  });
}
