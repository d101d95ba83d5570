// Many workers on one coordinator: `gaffer serve` as a child process on a fresh
// SQLite file, and `workers` simulated workers in the bench process, each its
// own WebSocket to 127.0.0.1 with one slot. Measured: the time to connect them
// all; the coordinator's CPU and resident memory (from /proc) while they are
// idle and heartbeating, and while they drain a batch of no-op jobs; the jobs
// per second drained; and whether every one of them stayed connected.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LIMITS } from '../../src/types/limits.ts';
import { fileLimit, openFiles, startServe, waitReady, watch, type Usage } from './proc.ts';
import { newTally, SimWorker, type SimTally } from './sim.ts';
import { count, note, since, sleep, withBound } from './util.ts';

const QUEUE = 'scale';

export const WORKERS_BOUNDS = {
  /** Connections opening at once (a listen backlog of a thousand SYNs at once would drop some and time the retransmit instead). */
  connectConcurrency: 100,
  /** All workers must have their welcome within this long. */
  connectMs: 300_000,
  /** The drain must finish within this long. */
  drainMs: 600_000,
  /** Open files kept free beyond one per worker, in the bench and in the coordinator. */
  fileHeadroom: 256,
} as const;

export interface WorkersOptions {
  workers: number;
  /** Jobs submitted for the drain. */
  drainJobs: number;
  /** How long the idle window lasts. */
  idleMs: number;
  /** After connecting, the workers settle this long before the idle window; after the drain, this long (at most a heartbeat interval) before the census. */
  settleMs: number;
}

export interface WorkersResult {
  store: string;
  workers: number;
  connectConcurrency: number;
  /** From the first connection attempt to the last welcome. */
  connectMs: number;
  heartbeatIntervalMs: number;
  openFiles: { benchSoft: number; coordinatorSoft: number; coordinatorOpenPeak: number };
  idle: Usage & { heartbeatsPerS: number; benchCpuPercent: number };
  drain: Usage & { jobs: number; ms: number; jobsPerS: number; benchCpuPercent: number; workersUsed: number };
  /** Every worker's socket still open at the end, none closed by the coordinator, and the coordinator listing all as connected. */
  stayedConnected: boolean;
  openAtEnd: number;
  coordinatorSaysConnected: number;
  tally: SimTally;
}

export async function workersRun(options: WorkersOptions): Promise<WorkersResult> {
  const bench = fileLimit('self');
  const needed = options.workers + WORKERS_BOUNDS.fileHeadroom;
  if (bench.soft < needed) {
    throw new Error(`${count(options.workers)} workers need at least ${count(needed)} open files; the limit here is ${bench.soft} (raise it: ulimit -n ${needed})`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'gaffer-scale-workers-'));
  const serve = await startServe(['--db', join(dir, 'gaffer.db')]);
  const sims: SimWorker[] = [];
  try {
    await waitReady(serve);
    const coordinatorFiles = fileLimit(serve.pid);
    if (coordinatorFiles.soft < needed) {
      throw new Error(`the coordinator may open ${coordinatorFiles.soft} files; ${count(options.workers)} workers need ${count(needed)} (raise ulimit -n)`);
    }
    const tally = newTally();
    const used = new Set<string>();
    let onCompleted: (() => void) | null = null;

    note(`workers: connecting ${count(options.workers)} to ${serve.workerUrl} (${WORKERS_BOUNDS.connectConcurrency} at a time)`);
    const t0 = performance.now();
    let next = 0;
    const connectOne = async (): Promise<void> => {
      while (next < options.workers) {
        const i = next++;
        const sim = new SimWorker({
          url: serve.workerUrl,
          name: `sim-${i}`,
          queue: QUEUE,
          tally,
          onAssign: () => used.add(`sim-${i}`),
          onAck: () => onCompleted?.(),
        });
        sims.push(sim);
        await sim.welcome;
      }
    };
    const connecting = Promise.all(Array.from({ length: WORKERS_BOUNDS.connectConcurrency }, connectOne));
    await withBound(connecting, WORKERS_BOUNDS.connectMs, 'connecting the workers');
    const connectMs = since(t0);
    const heartbeatIntervalMs = (await sims[0]!.welcome).heartbeatIntervalMs;
    note(`workers: all ${count(options.workers)} connected in ${(connectMs / 1000).toFixed(2)} s`);

    await sleep(options.settleMs);
    const idleWatch = watch(serve.pid);
    const benchIdle = watch(process.pid);
    const beats0 = tally.heartbeats;
    await sleep(options.idleMs);
    const idleUsage = idleWatch.end();
    const idleBench = benchIdle.end();
    const heartbeatsPerS = ((tally.heartbeats - beats0) / idleUsage.windowMs) * 1000;
    const filesPeak = openFiles(serve.pid);
    note(`workers: idle ${(idleUsage.windowMs / 1000).toFixed(1)} s: coordinator CPU ${idleUsage.cpuPercent.toFixed(1)}%, RSS ${idleUsage.rssMaxMiB.toFixed(0)} MiB, ${heartbeatsPerS.toFixed(0)} heartbeats/s`);

    const done0 = tally.completed;
    const drained = new Promise<void>((resolve) => {
      onCompleted = () => {
        if (tally.completed - done0 >= options.drainJobs) resolve();
      };
    });
    const drainWatch = watch(serve.pid);
    const benchDrain = watch(process.pid);
    const t1 = performance.now();
    for (let i = 0; i < options.drainJobs; i += LIMITS.submitBatchMaxJobs) {
      const size = Math.min(LIMITS.submitBatchMaxJobs, options.drainJobs - i);
      const jobs = Array.from({ length: size }, (_, k) => ({ queue: QUEUE, payload: { i: i + k } }));
      const res = await fetch(`${serve.baseUrl}/v1/jobs/batch`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ jobs }),
      });
      if (res.status !== 201) throw new Error(`submitting a batch answered ${res.status}: ${await res.text()}`);
      await res.arrayBuffer();
    }
    await withBound(drained, WORKERS_BOUNDS.drainMs, 'draining the jobs');
    const drainMs = since(t1);
    const drainUsage = drainWatch.end();
    const drainBench = benchDrain.end();
    note(`workers: drained ${count(options.drainJobs)} jobs in ${(drainMs / 1000).toFixed(2)} s over ${used.size} workers: coordinator CPU ${drainUsage.cpuPercent.toFixed(1)}%`);

    // Heartbeats have gone on through the drain; a while more, then the census.
    await sleep(Math.min(heartbeatIntervalMs, options.settleMs));
    const openAtEnd = sims.filter((s) => s.open).length;
    const res = await fetch(`${serve.baseUrl}/v1/workers`);
    const listed = ((await res.json()) as { workers: { name: string; connected: boolean }[] }).workers;
    const coordinatorSaysConnected = listed.filter((w) => w.name.startsWith('sim-') && w.connected).length;
    const closes = Object.values(tally.unexpectedCloses).reduce((a, b) => a + b, 0);
    return {
      store: 'sqlite',
      workers: options.workers,
      connectConcurrency: WORKERS_BOUNDS.connectConcurrency,
      connectMs,
      heartbeatIntervalMs,
      openFiles: { benchSoft: bench.soft, coordinatorSoft: coordinatorFiles.soft, coordinatorOpenPeak: filesPeak },
      idle: { ...idleUsage, heartbeatsPerS, benchCpuPercent: idleBench.cpuPercent },
      drain: {
        ...drainUsage,
        jobs: options.drainJobs,
        ms: drainMs,
        jobsPerS: (options.drainJobs / drainMs) * 1000,
        benchCpuPercent: drainBench.cpuPercent,
        workersUsed: used.size,
      },
      stayedConnected: openAtEnd === options.workers && closes === 0 && coordinatorSaysConnected === options.workers,
      openAtEnd,
      coordinatorSaysConnected,
      tally,
    };
  } finally {
    await Promise.all(sims.map((s) => s.close()));
    await serve.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
