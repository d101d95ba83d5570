// Coordinator restart: `gaffer serve` started as a child process on a store
// that already holds its jobs, timed from the spawn until /readyz answers 200,
// and until a worker that connects as soon as it is ready is handed its first
// attempt. Then the attempt is completed and the coordinator stopped (SIGTERM).
import type { AckFrame, AssignFrame } from '../../src/types/protocol.ts';
import { startServe, waitReady } from './proc.ts';
import { newTally, SimWorker } from './sim.ts';
import { median, since } from './util.ts';

const RESTART_BOUNDS = {
  /** The first attempt must reach the worker within this long of /readyz. */
  firstAssignMs: 60_000,
} as const;

export interface RestartSample {
  /** Spawn to /readyz 200. */
  readyMs: number;
  /** Spawn to the first assign frame at a worker that connected once /readyz answered. */
  firstAssignMs: number;
  /** The worker's connect and hello to its first assign. */
  helloToAssignMs: number;
  /** SIGTERM to exit. */
  stopMs: number;
}

export interface RestartResult {
  store: string;
  /** Jobs in the store (queued, plus finished ones), as it was opened. */
  jobs: number;
  queued: number;
  samples: RestartSample[];
  readyMedianMs: number;
  firstAssignMedianMs: number;
}

export async function restartRuns(store: string, serveArgs: readonly string[], jobs: { total: number; queued: number }, reps: number): Promise<RestartResult> {
  const samples: RestartSample[] = [];
  for (let r = 0; r < reps; r++) samples.push(await restartOnce(serveArgs));
  return {
    store,
    jobs: jobs.total,
    queued: jobs.queued,
    samples,
    readyMedianMs: median(samples.map((s) => s.readyMs)),
    firstAssignMedianMs: median(samples.map((s) => s.firstAssignMs)),
  };
}

async function restartOnce(serveArgs: readonly string[]): Promise<RestartSample> {
  const t0 = performance.now();
  const serve = await startServe(serveArgs);
  let sim: SimWorker | null = null;
  try {
    await waitReady(serve);
    const readyMs = since(t0);
    const tConnect = performance.now();
    let assigned!: (a: AssignFrame['assignments'][number]) => void;
    let acked!: (ack: AckFrame) => void;
    const firstAssign = new Promise<AssignFrame['assignments'][number]>((resolve) => (assigned = resolve));
    const firstAck = new Promise<AckFrame>((resolve) => (acked = resolve));
    sim = new SimWorker({
      url: serve.workerUrl,
      name: 'restart-probe',
      queue: 'scale',
      tally: newTally(),
      takeOne: true,
      onAssign: (a) => assigned(a),
      onAck: (a) => acked(a),
    });
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no attempt reached the worker within ${RESTART_BOUNDS.firstAssignMs} ms of /readyz`)), RESTART_BOUNDS.firstAssignMs);
    });
    try {
      await Promise.race([firstAssign, bound]);
      const firstAssignMs = since(t0);
      const helloToAssignMs = since(tConnect);
      // The worker completed the attempt as it came; wait for the ack, so the store is left tidy.
      await Promise.race([firstAck, bound]);
      await sim.close();
      sim = null;
      const stopMs = await serve.stop();
      return { readyMs, firstAssignMs, helloToAssignMs, stopMs };
    } finally {
      clearTimeout(timer);
    }
  } finally {
    await sim?.close();
    await serve.stop();
  }
}
