// Sweepers of several coordinators at once on one PostgreSQL schema. The
// coordinator runs its sweepers on every coordinator rather than on one that
// holds a lease (coordinator/sweeper.ts, Sweeper.sweep()); this is the check that doing so is
// safe: three stores, one per coordinator, sweep the same expired attempts and
// overdue jobs at the same moment, and each row is ended exactly once.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { place } from '../scheduler/index.ts';
import { checkSnapshot, readSnapshot } from '../store/suite/invariants/index.ts';
import { openPostgresStore } from '../store/postgres/store.ts';
import { LIMITS } from '../types/limits.ts';
import { testDatabase, type TestDatabase } from '../store/postgres/testing.ts';
import type { Store, SweepResult } from '../store/store.ts';
import { seededRandom, VirtualClock } from '../types/clock.ts';
import { isGafferError } from '../types/errors.ts';
import type { PlaceFn } from '../types/model.ts';
import { normalizeJob, normalizeWorker } from './validate.ts';

const STORES = 3;
const WORKERS = 12;
const SLOTS = 25;
/** Attempts leased and then left to expire: all of them swept at once by every store. */
const LEASED = WORKERS * SLOTS;
/** Jobs no worker serves, left to pass their deadline. */
const OVERDUE = 300;
/** Concurrent sweep rounds before every row must have been swept. */
const ROUNDS_MAX = 10;
const placeFn: PlaceFn = (input) => place(input);

describe('sweepers of three coordinators at once on one PostgreSQL schema', () => {
  let db: TestDatabase;
  let clock: VirtualClock;
  let stores: Store[];

  beforeEach(async () => {
    db = await testDatabase();
    clock = new VirtualClock();
    stores = [];
    for (let i = 0; i < STORES; i++) {
      // Tests of sweeping and claiming together: workers hold all they declare and are never judged for what they lose.
      const trust = { creditInitialSlots: LIMITS.workerSlotsMax, quarantineLostMin: 1_000_000 };
      stores.push(await openPostgresStore({ url: db.url, schema: db.schema, clock, random: seededRandom(100 + i), trust }));
    }
  });

  afterEach(async () => {
    for (const s of stores) await s.close();
    await db.drop();
  });

  /** Every store sweeps at the same moment, round after round, until a round finds nothing. STORE_BUSY (a lost race) is allowed: the next round retries. */
  async function sweepTogether(sweep: (s: Store) => Promise<SweepResult>): Promise<{ results: SweepResult[]; busy: number }> {
    const results: SweepResult[] = [];
    let busy = 0;
    for (let round = 0; round < ROUNDS_MAX; round++) {
      const settled = await Promise.allSettled(stores.map(sweep));
      let found = 0;
      for (const s of settled) {
        if (s.status === 'rejected') {
          assert.ok(isGafferError(s.reason, 'STORE_BUSY'), `a sweep failed: ${String(s.reason)}`);
          busy++;
          found++;
          continue;
        }
        results.push(s.value);
        found += s.value.changes.length + s.value.endedAttempts.length;
      }
      if (found === 0) return { results, busy };
    }
    assert.fail(`rows still being swept after ${ROUNDS_MAX} rounds`);
  }

  it('ends each expired attempt once and retries its job once', async (t) => {
    const first = stores[0]!;
    const workerIds: string[] = [];
    for (let w = 0; w < WORKERS; w++) {
      const spec = normalizeWorker({ name: `w${w}`, queues: { work: SLOTS } });
      workerIds.push((await first.upsertWorker({ spec })).id);
    }
    const jobs = Array.from({ length: LEASED }, (_, i) => normalizeJob({ queue: 'work', payload: i, heartbeatTimeoutMs: 1000, maxAttempts: 3 }));
    await first.submit({ jobs });
    let leased = 0;
    while (leased < LEASED) {
      const got = await first.claim({ workerIds, place: placeFn, maxJobs: 256 });
      assert.ok(got.length > 0, `claimed ${leased} of ${LEASED}`);
      leased += got.length;
    }

    clock.advance(1001); // every lease has expired
    const { results, busy } = await sweepTogether((s) => s.expireAttempts({ limit: 500 }));

    const ended = results.flatMap((r) => r.endedAttempts.map((e) => e.attemptId));
    assert.equal(ended.length, LEASED, `attempts reported ended: ${ended.length}, of ${LEASED} expired`);
    assert.equal(new Set(ended).size, LEASED, 'no attempt was ended by two coordinators');
    const byStore = results.map((r) => r.endedAttempts.length);
    const requeued = results.flatMap((r) => r.changes.filter((c) => c.state === 'queued').map((c) => c.jobId));
    assert.equal(new Set(requeued).size, requeued.length, 'no job was requeued twice');

    const snap = await readSnapshot(first, clock.now());
    checkSnapshot(snap);
    for (const job of snap.jobs) {
      const attempts = snap.attempts.get(job.id)!;
      assert.deepEqual(attempts.map((a) => a.state), ['lost'], `job ${job.id}`);
      assert.equal(job.state, 'queued');
      assert.equal(job.attempts, 1, `job ${job.id} counted ${job.attempts} attempts`);
    }
    t.diagnostic(`attempts ended per sweep call: ${byStore.join(', ')}; sweeps that lost a race (STORE_BUSY): ${busy}`);
  });

  it('expires each overdue job once', async () => {
    const deadline = new Date(clock.now() + 500).toISOString();
    const jobs = Array.from({ length: OVERDUE }, (_, i) => normalizeJob({ queue: 'nobody.serves', payload: i, deadline }));
    const submitted = await stores[0]!.submit({ jobs });
    clock.advance(1000);
    const { results } = await sweepTogether((s) => s.expireDeadlines({ limit: 500 }));
    const expired = results.flatMap((r) => r.changes.filter((c) => c.state === 'expired').map((c) => c.jobId));
    assert.equal(expired.length, OVERDUE, 'each overdue job reported expired once');
    assert.equal(new Set(expired).size, OVERDUE);
    for (const { job } of submitted) {
      const now = await stores[1]!.getJob({ id: job.id });
      assert.equal(now?.state, 'expired');
      assert.equal(now?.error?.code, 'DEADLINE_EXCEEDED');
    }
    checkSnapshot(await readSnapshot(stores[2]!, clock.now()));
  });
});
