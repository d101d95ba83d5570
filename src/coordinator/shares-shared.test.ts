// Three coordinators on one PostgreSQL schema, each with workers of its own:
// each claims mostly from its own share of the ready jobs, every job runs
// once, and a coordinator that stops gives its share to the others at once
// (its leave wakes them), long before its row would have gone stale.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { openPostgresStore } from '../store/postgres/store.ts';
import { testDatabase, type TestDatabase } from '../store/postgres/testing.ts';
import type { Store } from '../store/store.ts';
import { seededRandom, systemClock } from '../types/clock.ts';
import { LIMITS } from '../types/limits.ts';
import type { Assignment } from '../types/model.ts';
import { SHARE_COUNT, shareOf } from '../types/shares.ts';
import { Coordinator, type WorkerSession } from './coordinator.ts';

const COORDINATORS = 3;
const WORKERS_EACH = 2;
const SLOTS = 4;
const JOBS = 300;
/** Real time for the run and for the share hand-over, at most. */
const RUN_MS = 60_000;
/** Well under a beat (2 s): both others must hear of the leave, not wait for their next beat. */
const HANDOVER_MS = 750;

describe('shares of three coordinators on one PostgreSQL schema', () => {
  let db: TestDatabase;
  let stores: Store[];
  let coordinators: Coordinator[];

  beforeEach(async () => {
    db = await testDatabase();
    stores = [];
    coordinators = [];
    for (let i = 0; i < COORDINATORS; i++) {
      const store = await openPostgresStore({ url: db.url, schema: db.schema, clock: systemClock, random: seededRandom(300 + i), trust: { creditInitialSlots: LIMITS.workerSlotsMax } });
      stores.push(store);
      coordinators.push(new Coordinator({ store, clock: systemClock, random: seededRandom(400 + i) }));
    }
  });

  afterEach(async () => {
    for (const c of coordinators) await c.stop();
    for (const s of stores) await s.close();
    await db.drop();
  });

  /** A worker that completes each assignment at once, counting whether its job was in its coordinator's share. */
  async function attach(c: Coordinator, name: string, tally: { own: number; other: number }): Promise<void> {
    let session: WorkerSession | null = null;
    const link = {
      assign: (list: Assignment[]) => {
        const share = new Set(c.membership?.share() ?? []);
        for (const a of list) {
          if (share.has(shareOf(a.jobId))) tally.own++;
          else tally.other++;
          void session!.complete({ attemptId: a.attemptId, lease: a.lease }, { ok: true });
        }
      },
      revoke: () => {},
    };
    session = await c.attachWorker({ name, queues: { work: SLOTS } }, link);
  }

  it('claims mostly from its own share, runs every job once, and hands its share over on stopping', async () => {
    const tallies = coordinators.map(() => ({ own: 0, other: 0 }));
    for (const [i, c] of coordinators.entries()) {
      for (let w = 0; w < WORKERS_EACH; w++) await attach(c, `c${i}-w${w}`, tallies[i]!);
    }
    for (const c of coordinators) c.start();
    // Each beats twice, so that every one has seen the others.
    for (let k = 0; k < 2; k++) for (const c of coordinators) await c.membership!.beatNow();
    const owned = coordinators.map((c) => c.membership!.share()!.length);
    assert.equal(owned.reduce((a, b) => a + b, 0), SHARE_COUNT, `every share owned once: ${owned}`);
    for (const n of owned) assert.ok(n > SHARE_COUNT / 6, `equal weights, shares near a third each: ${owned}`);

    await coordinators[0]!.submitMany(Array.from({ length: JOBS }, (_, i) => ({ queue: 'work', payload: i })));
    for (const c of coordinators) c.kick();
    const until = Date.now() + RUN_MS;
    for (;;) {
      const counts = await stores[0]!.queueCounts();
      if ((counts.find((q) => q.queue === 'work')?.counts.succeeded ?? 0) === JOBS) break;
      assert.ok(Date.now() < until, `all ${JOBS} jobs succeed within ${RUN_MS} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const attempts = tallies.reduce((n, t) => n + t.own + t.other, 0);
    assert.equal(attempts, JOBS, 'one attempt per job');
    for (const [i, t] of tallies.entries()) {
      assert.ok(t.own + t.other > 0, `coordinator ${i} placed work`);
      assert.ok(t.own > 2 * t.other, `coordinator ${i} took mostly its own share: own ${t.own}, other ${t.other}`);
    }

    const leaving = coordinators[2]!;
    const t0 = Date.now();
    await leaving.stop();
    for (;;) {
      const sum = coordinators.slice(0, 2).reduce((n, c) => n + (c.membership!.share()?.length ?? SHARE_COUNT), 0);
      const alone = coordinators.slice(0, 2).some((c) => c.membership!.share() === null);
      if (sum === SHARE_COUNT && !alone) break;
      assert.ok(Date.now() - t0 < HANDOVER_MS, `the two left own every share within ${HANDOVER_MS} ms (a leave wakes them)`);
      await new Promise((r) => setTimeout(r, 20));
    }
  });
});
