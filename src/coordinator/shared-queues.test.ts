// Queue state and history shared by several coordinators on one PostgreSQL
// schema: a pause through one holds for the others' claims, a resume wakes
// them, and their history flushes and roll-ups add into the same rows with
// nothing counted twice.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { place } from '../scheduler/index.ts';
import { openPostgresStore, type PostgresStore } from '../store/postgres/store.ts';
import { testDatabase, type TestDatabase } from '../store/postgres/testing.ts';
import { seededRandom, VirtualClock } from '../types/clock.ts';
import { emptyPoint, HOUR_MS, MINUTE_MS, observe } from '../types/history.ts';
import { normalizeJob, normalizeWorker } from './validate.ts';

const STORES = 3;

describe('queue state and history of three coordinators on one PostgreSQL schema', () => {
  let db: TestDatabase;
  let clock: VirtualClock;
  let stores: PostgresStore[];

  beforeEach(async () => {
    db = await testDatabase();
    clock = new VirtualClock();
    stores = [];
    for (let i = 0; i < STORES; i++) stores.push(await openPostgresStore({ url: db.url, schema: db.schema, clock, random: seededRandom(200 + i) }));
  });

  afterEach(async () => {
    for (const s of stores) await s.close();
    await db.drop();
  });

  it('a pause through one holds for the others, and a resume wakes them', async () => {
    const [a, b] = stores as [PostgresStore, PostgresStore];
    const woken = new Promise<void>((resolve) => b.onWake(resolve));
    await b.whenListening();
    await b.upsertWorker({ spec: normalizeWorker({ id: 'w1', name: 'w1', labels: {}, cores: 4, memoryMb: 4096, gpuIds: [], queues: { q: 2 }, keys: [] }) });
    await a.setQueuePaused({ queue: 'q', paused: true, reason: 'maintenance' });
    await a.submit({ jobs: [normalizeJob({ queue: 'q', payload: 1 }, {})] });
    const claim = () => b.claim({ workerIds: ['w1'], place: (input) => place(input), maxJobs: 4 });
    assert.deepEqual(await claim(), [], 'paused through another coordinator');
    assert.deepEqual((await b.listQueueStates()).map((s) => [s.queue, s.paused, s.reason]), [['q', true, 'maintenance']]);
    await a.setQueuePaused({ queue: 'q', paused: false });
    await woken;
    assert.equal((await claim()).length, 1);
  });

  it('flushes and roll-ups of every coordinator add into the same rows, each minute once', async () => {
    const base = Math.floor(clock.now() / HOUR_MS) * HOUR_MS;
    // Each coordinator flushes 10 minutes of one queue, concurrently.
    await Promise.all(
      stores.map((s, i) =>
        s.addHistory({
          points: Array.from({ length: 10 }, (_, m) => {
            const p = emptyPoint('q', base + m * MINUTE_MS);
            p.counts.submitted = i + 1;
            observe(p.run, 1_000);
            return p;
          }),
        }),
      ),
    );
    const minutes = await stores[0]!.readHistory({ queue: 'q', fromMs: base, toMs: base + HOUR_MS, step: 'minute', maxPoints: 100 });
    assert.deepEqual(minutes.map((p) => [p.counts.submitted, p.run.sumMs]), Array.from({ length: 10 }, () => [6, 3_000]));
    // Every coordinator rolls up at once, with batches small enough to interleave.
    const done = await Promise.all(stores.map(async (s) => {
      let n = 0;
      for (;;) {
        const out = await s.rollUpHistory({ minutesBeforeMs: base + 2 * HOUR_MS, hoursBeforeMs: 0, limit: 2 });
        n += out.rolledUpMinutes;
        if (out.rolledUpMinutes === 0) return n;
      }
    }));
    assert.equal(done.reduce((x, y) => x + y, 0), 10, 'each minute rolled up once');
    const hours = await stores[1]!.readHistory({ queue: 'q', fromMs: base, toMs: base + HOUR_MS, step: 'hour', maxPoints: 10 });
    assert.deepEqual(hours.map((p) => [p.at, p.counts.submitted, p.run.sumMs, p.run.buckets.reduce((x, y) => x + y, 0)]), [[base, 60, 30_000, 30]]);
  });
});
