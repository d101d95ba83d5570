// Trust end to end in virtual time: a real SQLite store, the real scheduler and
// in-process workers, some of which lie. Replicas with a quorum catch the liars
// and quarantine them; adaptive replication spends far less than `replicas`
// attempts per job on a trusted pool and still catches a worker that turns bad;
// a worker that fails its reliability check gets no real work.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { openSqliteStore } from '../store/sqlite/store.ts';
import type { Store } from '../store/store.ts';
import type { TrustPolicy } from '../trust/index.ts';
import { seededRandom, VirtualClock, type Random } from '../types/clock.ts';
import type { Job, Json } from '../types/model.ts';
import { isTerminalJobState } from '../types/states.ts';
import { Coordinator } from './coordinator.ts';
import { LocalWorker, type Handler } from './local-worker.ts';
import type { QueueConfig } from './validate.ts';

/** The right answer to a job: anything deterministic will do. */
const answer = (payload: Json): Json => ({ square: Number((payload as { n: number }).n) ** 2 });

interface Pool {
  clock: VirtualClock;
  store: Store;
  coordinator: Coordinator;
  workers: LocalWorker[];
  close(): Promise<void>;
}

async function pool(options: { seed: number; trust?: Partial<TrustPolicy>; queues?: Record<string, QueueConfig> }): Promise<Pool> {
  const dir = mkdtempSync(join(tmpdir(), 'gaffer-trust-'));
  const clock = new VirtualClock();
  const store = openSqliteStore({
    path: join(dir, 'gaffer.db'),
    clock,
    random: seededRandom(options.seed),
    synchronous: 'normal',
    ...(options.trust ? { trust: options.trust } : {}),
  });
  const coordinator = new Coordinator({ store, clock, sweepIntervalMs: 100, ...(options.queues ? { queues: options.queues } : {}) });
  coordinator.start();
  const workers: LocalWorker[] = [];
  return {
    clock,
    store,
    coordinator,
    workers,
    async close() {
      for (const w of workers) w.freeze();
      await coordinator.stop();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function addWorker(p: Pool, name: string, handler: Handler, slots = 2, queue = 'work'): Promise<LocalWorker> {
  const w = new LocalWorker({
    coordinator: p.coordinator,
    clock: p.clock,
    spec: { id: name, name, labels: {}, cores: 8, memoryMb: 16_000, gpuIds: [], keys: [] },
    handlers: { [queue]: { slots, handler } },
    heartbeatIntervalMs: 500,
  });
  await w.start();
  p.workers.push(w);
  return w;
}

const flush = async (c: Coordinator): Promise<void> => {
  for (let i = 0; i < 5; i++) {
    await c.settled();
    await new Promise((r) => setImmediate(r));
  }
};

/** Drives virtual time until every job has ended; bounded. */
async function runUntilDone(p: Pool, ids: readonly string[], maxSteps = 20_000): Promise<Job[]> {
  for (let step = 0; step < maxSteps; step++) {
    await flush(p.coordinator);
    const counts = await p.store.queueCounts();
    const open = counts.reduce((n, q) => n + q.counts.waiting + q.counts.queued + q.counts.running + q.counts.verifying, 0);
    if (open === 0) return Promise.all(ids.map((id) => p.coordinator.getJob(id)));
    await p.clock.advanceAsync(100, () => flush(p.coordinator));
  }
  assert.fail(`jobs did not end within ${maxSteps} steps`);
}

async function submitMany(p: Pool, count: number, first: number, spec: Record<string, Json>): Promise<string[]> {
  const ids: string[] = [];
  for (let start = 0; start < count; start += 100) {
    const batch = Array.from({ length: Math.min(100, count - start) }, (_, i) => ({ queue: 'work', payload: { n: first + start + i }, ...spec }));
    for (const r of await p.coordinator.submitMany(batch)) ids.push(r.job.id);
  }
  return ids;
}

const honest: Handler = (payload) => answer(payload);

/** The handler, taking a random 0.5 to 2.5 s of virtual time: replicas finish in no fixed order, as on real machines. */
const timed = (p: Pool, random: Random, h: Handler): Handler => async (payload, ctx) => {
  await new Promise<void>((resolve) => p.clock.setTimeout(() => resolve(), 500 + Math.floor(random.next() * 2000)));
  return h(payload, ctx);
};
/** A bad actor: a made-up result every time, never the same twice (it does not collude). */
const liar = (random: Random): Handler => () => ({ square: -Math.floor(random.next() * 1e9) });

describe('trust', () => {
  let p: Pool | null = null;
  afterEach(async () => {
    await p?.close();
    p = null;
  });

  it('eight workers, two returning wrong results, 500 jobs with replicas 3 and quorum 2: no wrong result accepted, both liars quarantined', async () => {
    p = await pool({ seed: 11 });
    const random = seededRandom(99);
    const durations = seededRandom(23);
    for (let i = 1; i <= 6; i++) await addWorker(p, `honest-${i}`, timed(p, durations, honest));
    // Liars answer at once, so their wrong results always arrive first.
    for (let i = 1; i <= 2; i++) await addWorker(p, `bad-${i}`, liar(random));
    const ids = await submitMany(p, 500, 0, { replicas: 3, quorum: 2 });
    const jobs = await runUntilDone(p, ids);

    const wrong = jobs.filter((j) => j.state !== 'succeeded' || JSON.stringify(j.result) !== JSON.stringify(answer(j.payload)));
    assert.deepEqual(wrong.map((j) => [j.id, j.state, j.error?.code]), [], 'every job succeeded with the right answer');
    const workers = await p.coordinator.listWorkers();
    const byName = new Map(workers.map((w) => [w.name, w]));
    for (let i = 1; i <= 2; i++) {
      const w = byName.get(`bad-${i}`)!;
      assert.equal(w.state, 'quarantined', `bad-${i} is quarantined`);
      assert.match(w.quarantineReason ?? '', /invalid/);
      assert.equal(w.reputation.valid, 0);
    }
    for (let i = 1; i <= 6; i++) {
      const w = byName.get(`honest-${i}`)!;
      assert.equal(w.quarantined, false, `honest-${i} is not quarantined`);
      assert.equal(w.reputation.invalid, 0);
      assert.ok(w.reputation.valid > 0);
    }
  });

  it('adaptive replication: a trusted pool runs about one attempt per job, and a worker that turns bad is caught within 20 of its jobs', async (t) => {
    p = await pool({ seed: 5 });
    let turned = false;
    let turncoatCalls = 0;
    const turncoatRandom = seededRandom(3);
    const turncoat: Handler = (payload) => {
      if (!turned) return answer(payload);
      turncoatCalls++;
      return { square: -1 - Math.floor(turncoatRandom.next() * 1e9) };
    };
    const durations = seededRandom(17);
    for (let i = 1; i <= 7; i++) await addWorker(p, `honest-${i}`, timed(p, durations, honest), 1);
    await addWorker(p, 'turncoat', timed(p, durations, turncoat), 1);
    const spec = { replicas: 3, quorum: 2, adaptive: true };

    // Warm-up: every worker earns a valid streak on fully replicated jobs.
    await runUntilDone(p, await submitMany(p, 150, 0, spec));
    const trusted = (await p.coordinator.listWorkers()).filter((w) => w.reputation.streak >= 10);
    assert.equal(trusted.length, 8, `the whole pool is trusted after warm-up: ${JSON.stringify((await p.coordinator.listWorkers()).map((w) => [w.name, w.reputation]))}`);

    const measured = await runUntilDone(p, await submitMany(p, 400, 1000, spec));
    const attempts = measured.reduce((n, j) => n + j.attempts, 0);
    assert.ok(measured.every((j) => j.state === 'succeeded' && JSON.stringify(j.result) === JSON.stringify(answer(j.payload))));
    t.diagnostic(`after warm-up: ${attempts} attempts for ${measured.length} jobs (${(attempts / measured.length).toFixed(2)} per job)`);
    assert.ok(attempts <= 1.3 * measured.length, `attempts ${attempts} for ${measured.length} jobs: at most 1.3 per job`);
    assert.ok(measured.some((j) => j.solo) && measured.some((j) => !j.solo), 'some jobs ran alone, some were spot-checked');

    // The turncoat starts lying. Jobs go in rounds of one per worker, so each round it runs about one.
    turned = true;
    for (let round = 0; (await p.store.getWorker({ id: 'turncoat' }))!.reputation.invalid === 0; round++) {
      assert.ok(turncoatCalls <= 20 && round < 200, `caught within 20 of its jobs (it has run ${turncoatCalls} in ${round} rounds)`);
      await runUntilDone(p, await submitMany(p, 8, 5000 + round * 8, spec));
    }
    t.diagnostic(`the turncoat was caught by a spot check after ${turncoatCalls} of its jobs`);
    assert.ok(turncoatCalls > 0 && turncoatCalls <= 20, `caught after ${turncoatCalls} of its jobs`);
    const caught = (await p.store.getWorker({ id: 'turncoat' }))!;
    assert.equal(caught.reputation.streak, 0, 'its trust is reset');
  });

  it('a worker that fails the reliability check never receives a real job of that queue', async () => {
    const challenge = { payload: { n: -7 }, answer: answer({ n: -7 }), timeLimitMs: 5000 };
    p = await pool({ seed: 2, queues: { work: { challenge } } });
    const seen = new Map<string, Json[]>();
    const recording = (name: string, h: Handler): Handler => (payload, ctx) => {
      seen.set(name, [...(seen.get(name) ?? []), payload]);
      return h(payload, ctx);
    };
    await addWorker(p, 'good', recording('good', honest));
    await addWorker(p, 'bad', recording('bad', liar(seededRandom(1))));
    const ids = await submitMany(p, 40, 0, {});
    const jobs = await runUntilDone(p, ids);
    assert.ok(jobs.every((j) => j.state === 'succeeded'));
    assert.deepEqual(seen.get('bad'), [{ n: -7 }], 'the failing worker only ever saw its challenge');
    assert.equal(seen.get('good')!.length, 41, 'the good worker ran its challenge and every real job');
    const [bad, good] = [await p.store.getWorker({ id: 'bad' }), await p.store.getWorker({ id: 'good' })];
    assert.deepEqual([bad?.checks.work?.state, bad?.checks.work?.reason], ['failed', 'the challenge answer was wrong']);
    assert.equal(good?.checks.work?.state, 'passed');
    assert.equal(typeof good?.checks.work?.speedMs, 'number');
    // Released by an admin, it is checked again; passing now, it gets work.
    p.workers[1]!.freeze();
    await addWorker(p, 'bad', recording('bad', honest));
    await p.coordinator.setQuarantine('bad', false);
    const more = await runUntilDone(p, await submitMany(p, 20, 100, {}));
    assert.ok(more.every((j) => j.state === 'succeeded'));
    assert.equal((await p.store.getWorker({ id: 'bad' }))?.checks.work?.state, 'passed');
    assert.ok(seen.get('bad')!.length > 2, 'it got real work after passing');
  });

  it('a verifier pool checks each result with its own timeouts: a stalled verifier is replaced, a rejected result runs elsewhere', async () => {
    // The verifier queue's defaults ask for replicas and verification of its own; a verification runs once regardless.
    p = await pool({ seed: 4, queues: { check: { heartbeatTimeoutMs: 2000, maxAttempts: 3, replicas: 3 } } });
    const verdict: Handler = (payload): Json => {
      const v = payload as { payload: Json; result: Json };
      return JSON.stringify(v.result) === JSON.stringify(answer(v.payload)) ? { valid: true } : { valid: false, reason: 'wrong square' };
    };
    let stalls = 1;
    const stalling: Handler = (payload, ctx) => {
      if (stalls-- > 0) return new Promise<Json>(() => undefined); // hangs, and stops heartbeating below
      return verdict(payload, ctx);
    };
    await addWorker(p, 'liar', liar(seededRandom(8)), 1);
    const staller = await addWorker(p, 'verifier-1', stalling, 1, 'check');
    const { job } = await p.coordinator.submit({ queue: 'work', payload: { n: 9 }, verify: { queue: 'check' }, maxAttempts: 3 });
    await flush(p.coordinator);
    assert.equal((await p.coordinator.getJob(job.id)).state, 'verifying', 'the liar answered; its result awaits a verdict');
    assert.equal(staller.activeAttempts, 1, 'the only verifier took the verification, and hangs');
    staller.freeze();
    await addWorker(p, 'verifier-2', verdict, 1, 'check');
    await addWorker(p, 'honest', honest, 1);
    const [done] = await runUntilDone(p, [job.id]);
    assert.deepEqual([done!.state, done!.result], ['succeeded', answer({ n: 9 })]);
    const attempts = await p.store.listAttempts({ jobId: job.id });
    assert.deepEqual(attempts.map((a) => [a.workerId, a.state]), [['liar', 'rejected'], ['honest', 'completed']]);
    const verifications = (await p.store.listJobs({ queue: 'check', limit: 10 })).jobs;
    assert.equal(verifications.length, 2, 'one verification per result');
    assert.ok(verifications.every((v) => v.replicas === 1 && v.verify === null && v.state === 'succeeded'));
    const first = verifications.find((v) => v.verifies?.attemptId === attempts[0]!.id)!;
    assert.deepEqual((await p.store.listAttempts({ jobId: first.id })).map((a) => [a.workerId, a.state]), [['verifier-1', 'lost'], ['verifier-2', 'completed']]);
    assert.equal((await p.store.getWorker({ id: 'liar' }))?.reputation.invalid, 1);
    assert.equal((await p.store.getWorker({ id: 'honest' }))?.reputation.valid, 1);
  });
});
