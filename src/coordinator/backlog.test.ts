// The backlog keeper in virtual time, on real stores: it holds a queue's
// filler jobs at their target while real work (higher priority) is handed out
// first, and three coordinators on one PostgreSQL database keep one backlog
// between them (never more than the target queued, however they race).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { openPostgresStore } from '../store/postgres/store.ts';
import { testDatabase, type TestDatabase } from '../store/postgres/testing.ts';
import { openSqliteStore } from '../store/sqlite/store.ts';
import type { Store } from '../store/store.ts';
import { seededRandom, VirtualClock } from '../types/clock.ts';
import { LIMITS, POSTGRES_DEFAULTS } from '../types/limits.ts';
import type { Json } from '../types/model.ts';
import { Coordinator } from './coordinator.ts';
import { LocalWorker, type Handler } from './local-worker.ts';
import type { QueueConfig } from './validate.ts';

const TARGET = 3;
const QUEUES: Record<string, QueueConfig> = { work: { backlog: { target: TARGET, job: { payload: { cc: true }, priority: -100 } } } };
const TRUST = { creditInitialSlots: LIMITS.workerSlotsMax };

/** A handler whose calls wait until the test resolves them. */
function manualHandler(): { handler: Handler; calls: { payload: Json; resolve: (v: Json) => void }[] } {
  const calls: { payload: Json; resolve: (v: Json) => void }[] = [];
  return { handler: (payload) => new Promise<Json>((resolve) => calls.push({ payload, resolve })), calls };
}

/** Real time a settle may take before the virtual clock is moved on for a transaction retrying on it. */
const SETTLE_WAIT_MS = 50;
/** Most times the clock is moved on for one settle. */
const SETTLE_NUDGES_MAX = 40;

/**
 * Waits until the coordinators are settled. On PostgreSQL a transaction that
 * lost a race (a deadlock, a serialization failure) runs again after a short
 * wait on the injected clock; with `clock`, the virtual clock moves on by that
 * wait whenever a settle takes longer than SETTLE_WAIT_MS of real time.
 */
async function flush(cs: readonly Coordinator[], clock?: VirtualClock): Promise<void> {
  for (let i = 0; i < 5; i++) {
    for (const c of cs) await settle(c, clock);
    await new Promise((r) => setImmediate(r));
  }
}

async function settle(c: Coordinator, clock: VirtualClock | undefined): Promise<void> {
  const settled = c.settled().then(() => true);
  if (!clock) return void (await settled);
  for (let n = 0; n < SETTLE_NUDGES_MAX; n++) {
    const done = await Promise.race([settled, new Promise<false>((r) => setTimeout(() => r(false), SETTLE_WAIT_MS))]);
    if (done) return;
    clock.advance(POSTGRES_DEFAULTS.txRetryBaseDelayMs * POSTGRES_DEFAULTS.txRetryMax);
  }
  throw new Error(`a coordinator did not settle within ${SETTLE_NUDGES_MAX} nudges of the clock`);
}

function localWorker(coordinator: Coordinator, clock: VirtualClock, name: string, handler: Handler, slots: number): LocalWorker {
  return new LocalWorker({
    coordinator,
    clock,
    spec: { name, labels: {}, cores: 8, memoryMb: 16_000, gpuIds: [], keys: [] },
    handlers: { work: { slots, handler } },
    heartbeatIntervalMs: 500,
  });
}

const fillerQueued = async (store: Store): Promise<number> => (await store.queueCounts()).find((c) => c.queue === 'work')?.fillerQueued ?? 0;

describe('backlog keeper', () => {
  let dir: string;
  let clock: VirtualClock;
  let store: Store;
  let coordinator: Coordinator;
  let worker: LocalWorker | null;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'gaffer-backlog-'));
    clock = new VirtualClock();
    store = openSqliteStore({ path: join(dir, 'gaffer.db'), clock, random: seededRandom(11), trust: TRUST });
    coordinator = new Coordinator({ store, clock, sweepIntervalMs: 100, queues: QUEUES });
    worker = null;
  });

  afterEach(async () => {
    worker?.freeze();
    await coordinator.stop();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('holds the backlog at its target while real jobs are handed out first', async () => {
    coordinator.start();
    await flush([coordinator]);
    assert.equal(await fillerQueued(store), TARGET, 'filled on start');
    const h = manualHandler();
    worker = localWorker(coordinator, clock, 'sealer', h.handler, 1);
    await worker.start();
    await flush([coordinator]);
    assert.deepEqual(h.calls.map((c) => c.payload), [{ cc: true }], 'idle capacity takes a filler job');
    assert.equal(await fillerQueued(store), TARGET, 'the filler job taken is replaced at once');
    const { job: real } = await coordinator.submit({ queue: 'work', payload: { sector: 7 } });
    h.calls[0]!.resolve({ ok: true });
    await flush([coordinator]);
    assert.deepEqual(h.calls.map((c) => c.payload), [{ cc: true }, { sector: 7 }], 'the real job goes before every queued filler job');
    assert.equal(await fillerQueued(store), TARGET);
    h.calls[1]!.resolve({ ok: true });
    await flush([coordinator]);
    assert.equal((await store.getJob({ id: real.id }))?.state, 'succeeded');
    assert.deepEqual(h.calls[2]?.payload, { cc: true }, 'then the backlog again');
    for (let beat = 0; beat < 5; beat++) {
      clock.advance(LIMITS.backlogTargetMax); // many beats: nothing more is made while the target is met
      await flush([coordinator]);
      assert.equal(await fillerQueued(store), TARGET);
    }
    const fillers = await store.listJobs({ filler: true, limit: 50 });
    assert.equal(fillers.jobs.length, TARGET + 2, 'two taken, three queued');
  });

  it('tops up on its beat what another coordinator took', async () => {
    coordinator.start();
    await flush([coordinator]);
    const taken = (await store.listJobs({ filler: true, limit: 1 })).jobs[0]!;
    await store.cancel({ jobId: taken.id });
    assert.equal(await fillerQueued(store), TARGET - 1);
    clock.advance(1000);
    await flush([coordinator]);
    assert.equal(await fillerQueued(store), TARGET);
  });
});

describe('backlog keeper: three coordinators on one PostgreSQL database', () => {
  const COORDINATORS = 3;
  let db: TestDatabase;
  let clock: VirtualClock;
  let stores: Store[];
  let coordinators: Coordinator[];
  let workers: LocalWorker[];

  beforeEach(async () => {
    db = await testDatabase();
    clock = new VirtualClock();
    stores = [];
    coordinators = [];
    workers = [];
    for (let i = 0; i < COORDINATORS; i++) {
      const store = await openPostgresStore({ url: db.url, schema: db.schema, clock, random: seededRandom(300 + i), trust: TRUST });
      stores.push(store);
      coordinators.push(new Coordinator({ store, clock, sweepIntervalMs: 100, queues: QUEUES }));
    }
  });

  afterEach(async () => {
    for (const w of workers) w.freeze();
    for (const c of coordinators) await c.stop();
    for (const s of stores) await s.close();
    await db.drop();
  });

  it('keeps one backlog: never more than the target queued while they race, and the target once they settle', async () => {
    const handlers = coordinators.map(() => manualHandler());
    const overfill: number[] = [];
    /** Reads the count over and over while `race` runs; every read must be within the target. */
    const watch = async (race: Promise<unknown>): Promise<void> => {
      let done = false;
      void race.finally(() => (done = true));
      while (!done) {
        const n = await fillerQueued(stores[0]!);
        if (n > TARGET) overfill.push(n);
        await new Promise((r) => setImmediate(r));
      }
      await race;
    };
    await watch(Promise.all(coordinators.map(async (c) => c.start())));
    for (let i = 0; i < COORDINATORS; i++) {
      const w = localWorker(coordinators[i]!, clock, `sealer-${i}`, handlers[i]!.handler, 2);
      workers.push(w);
      await w.start();
    }
    let taken = 0;
    for (let round = 0; round < 8; round++) {
      // Every worker finishes what it holds; all three keepers top up at the same moment, on their beat and by hand.
      for (const h of handlers) for (const call of h.calls.splice(0)) (call.resolve({ ok: true }), taken++);
      clock.advance(1000);
      await watch(Promise.all([...coordinators.map((c) => c.topUpBacklogs()), flush(coordinators, clock)]));
      await flush(coordinators, clock);
      assert.ok((await fillerQueued(stores[round % COORDINATORS]!)) <= TARGET);
    }
    assert.deepEqual(overfill, [], 'no read saw more than the target queued');
    await flush(coordinators, clock);
    clock.advance(1000);
    await flush(coordinators, clock);
    assert.equal(await fillerQueued(stores[1]!), TARGET, 'exactly the target once they settle');
    const held = handlers.reduce((n, h) => n + h.calls.length, 0);
    assert.equal(held, COORDINATORS * 2, 'every worker slot holds a filler job');
    const made = (await stores[2]!.queueCounts()).find((c) => c.queue === 'work')!;
    assert.equal(made.counts.succeeded, taken);
    assert.equal(made.counts.queued + made.counts.running + made.counts.succeeded, TARGET + held + taken, 'no filler job made beyond what was taken');
  });
});
