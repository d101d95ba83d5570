// Replicated jobs on a fixed pool of workers whose attempts fail or lose
// their leases: once the workers behave, every job must still succeed.
import fc from 'fast-check';
import { seededRandom, VirtualClock } from '../../../types/clock.ts';
import { LIMITS } from '../../../types/limits.ts';
import type { Assignment, Json, PlaceFn } from '../../../types/model.ts';
import { newJob } from '../../../types/new-job.ts';
import type { LeaseRef, Store } from '../../store.ts';
import { checkSnapshot, checkTransitions, ensure, live, readSnapshot } from './checks.ts';
import { START_MS } from './commands.ts';
import type { OpenStore } from './context.ts';
import { drainToTerminal } from './drain.ts';

interface PoolScenario {
  storeSeed: number;
  replicas: number;
  quorumPick: number;
  /** Workers beyond `replicas` in the pool. */
  spare: number;
  jobs: number;
  /** Each acts on one live attempt: its worker completes it, fails it, or stops heartbeating it. */
  events: { kind: 'complete' | 'fail' | 'lose'; pick: number }[];
}

export const poolScenarioArb: fc.Arbitrary<PoolScenario> = fc.record({
  storeSeed: fc.integer(),
  replicas: fc.integer({ min: 2, max: 3 }),
  quorumPick: fc.nat({ max: 2 }),
  spare: fc.integer({ min: 0, max: 1 }),
  jobs: fc.integer({ min: 1, max: 3 }),
  events: fc.array(fc.record({ kind: fc.constantFrom('complete' as const, 'fail' as const, 'lose' as const), pick: fc.nat() }), { minLength: 1, maxLength: 12 }),
});

const POOL_HEARTBEAT_MS = 1000;

/**
 * Liveness (invariant 1) on a pool that can run every job: as many workers as
 * replicas, or one more. Retries are plentiful and results always agree, so
 * once the workers behave every job must succeed; no worker is left out for
 * good because an attempt of it failed or was lost.
 */
export async function runPoolScenario(sc: PoolScenario, open: OpenStore, place: PlaceFn, name: string): Promise<void> {
  const cleanups: (() => Promise<void> | void)[] = [];
  const clock = new VirtualClock(START_MS);
  // Lost attempts never quarantine a worker here: the pool must stay whole for liveness to mean anything.
  const trust = { quarantineLostMin: 1_000_000 };
  const store = await open({ clock, random: seededRandom(sc.storeSeed), name, defer: (fn) => void cleanups.push(fn), trust });
  try {
    const pool = Array.from({ length: sc.replicas + sc.spare }, (_, i) => `p${i}`);
    for (const id of pool) {
      await store.upsertWorker({ spec: { id, name: id, labels: {}, cores: 8, memoryMb: 8192, gpuIds: [], queues: { 'q.a': sc.jobs }, keys: [] } });
    }
    const spec = newJob({
      queue: 'q.a',
      replicas: sc.replicas,
      quorum: 1 + (sc.quorumPick % sc.replicas),
      maxAttempts: 50,
      heartbeatTimeoutMs: POOL_HEARTBEAT_MS,
      backoff: { baseMs: 0, maxMs: 0 },
    });
    await store.submit({ jobs: Array.from({ length: sc.jobs }, () => spec) });
    const result = (ref: { jobId: string }): Json => ({ ok: ref.jobId });
    const held = new Map<string, Assignment>();
    let prev = await readSnapshot(store, clock.now());
    for (const [i, ev] of sc.events.entries()) {
      for (const a of await store.claim({ workerIds: pool, place, maxJobs: 100 })) held.set(a.attemptId, a);
      const holding = [...held.values()];
      const a = holding[ev.pick % Math.max(1, holding.length)];
      if (a) {
        held.delete(a.attemptId);
        if (ev.kind === 'complete') await store.complete({ attemptId: a.attemptId, lease: a.lease, result: result(a) });
        else if (ev.kind === 'fail') await store.fail({ attemptId: a.attemptId, lease: a.lease, error: { code: 'HANDLER_ERROR', message: 'x' }, retryable: true });
        else await loseOne(store, clock, held);
      }
      const next = await readSnapshot(store, clock.now());
      try {
        checkSnapshot(next);
        checkTransitions(prev, next, false);
      } catch (err) {
        if (err instanceof Error) err.message = `at event ${i} ${JSON.stringify(ev)}: ${err.message}`;
        throw err;
      }
      prev = next;
      // Attempts ended by the store (another replica settled the job) are no longer the workers' to report.
      for (const id of held.keys()) if (!live(next.attemptById.get(id)!)) held.delete(id);
    }
    const out = await drainToTerminal(store, clock, { workerIds: pool, place, held, result, maxRounds: 50 });
    ensure(out.open.length === 0, 'liveness', () => `on a pool of ${pool.length} workers these jobs never ended: ${out.open.map((j) => `${j.id} ${j.state} want=${j.want}`).join('; ')}`);
    const end = await readSnapshot(store, clock.now());
    checkSnapshot(end);
    // Lost attempts spend no retries, but a job lost jobLostAttemptsMax times ends: that bound is not "to spare".
    const lostOut = (j: (typeof end.jobs)[number]): boolean => j.state === 'failed' && j.error?.code === 'LEASE_LOST' && j.lost >= LIMITS.jobLostAttemptsMax;
    const unfinished = end.jobs.filter((j) => j.state !== 'succeeded' && !lostOut(j));
    ensure(unfinished.length === 0, 'liveness', () => `with agreeing results and retries to spare, jobs ended ${unfinished.map((j) => `${j.state} ${JSON.stringify(j.error)}`)}`);
  } finally {
    await store.close();
    for (const fn of cleanups.reverse()) await fn();
  }
}

/** The attempt just taken out of `held` stops heartbeating; the others keep theirs alive until it is swept as lost. */
async function loseOne(store: Store, clock: VirtualClock, held: Map<string, Assignment>): Promise<void> {
  const beat = async (): Promise<void> => {
    const byWorker = new Map<string, LeaseRef[]>();
    for (const a of held.values()) byWorker.set(a.workerId, [...(byWorker.get(a.workerId) ?? []), { attemptId: a.attemptId, lease: a.lease }]);
    for (const [workerId, attempts] of byWorker) await store.heartbeat({ workerId, attempts });
  };
  await beat();
  clock.advance(POOL_HEARTBEAT_MS / 2);
  await beat();
  clock.advance(POOL_HEARTBEAT_MS / 2 + 1);
  await store.expireAttempts({ limit: 500 });
}
