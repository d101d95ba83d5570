// A coordinator at rest on a backlog: `gaffer serve` as a child process on a
// store holding N queued jobs, no worker connected. What it costs to keep
// the backlog (its sweepers and timers run all the same): CPU and resident
// memory over a window, and how long its event loop leaves a request waiting
// (/healthz round trips, which touch no store, every 20 ms).
import { startServe, waitReady, watch, type Usage } from './proc.ts';
import { sleep, summarize, type Summary } from './util.ts';

const IDLE = {
  /** /healthz is asked this often during the window. */
  probeIntervalMs: 20,
} as const;

export interface IdleResult {
  store: string;
  /** Jobs in the store, and how many of them queued. */
  jobs: number;
  queued: number;
  usage: Usage;
  /** /healthz round trips from the bench process over the window. */
  healthz: Summary;
}

/** `settleMs`: after /readyz, the coordinator settles this long before the window of `windowMs`. */
export async function idleRun(
  store: string,
  serveArgs: readonly string[],
  jobs: { total: number; queued: number },
  windowMs: number,
  settleMs: number,
): Promise<IdleResult> {
  const serve = await startServe(serveArgs);
  try {
    await waitReady(serve);
    await sleep(settleMs);
    const w = watch(serve.pid);
    const t0 = performance.now();
    const trips: number[] = [];
    while (performance.now() - t0 < windowMs) {
      const t = performance.now();
      const res = await fetch(`${serve.baseUrl}/healthz`);
      await res.arrayBuffer();
      trips.push(performance.now() - t);
      await sleep(IDLE.probeIntervalMs);
    }
    return { store, jobs: jobs.total, queued: jobs.queued, usage: w.end(), healthz: summarize(trips) };
  } finally {
    await serve.stop();
  }
}
