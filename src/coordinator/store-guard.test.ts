// A store that goes away and comes back, and several coordinators on one
// store, in virtual time: real SQLite stores (two on one file play two
// coordinators), a switch that makes every store call fail as the PostgreSQL
// store does when its connection is lost (NOT_READY), and a bus that plays
// LISTEN/NOTIFY.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { openSqliteStore } from '../store/sqlite/store.ts';
import type { Store } from '../store/store.ts';
import { seededRandom, VirtualClock } from '../types/clock.ts';
import { GafferError, isGafferError } from '../types/errors.ts';
import { COORDINATOR_DEFAULTS } from '../types/limits.ts';
import type { Json } from '../types/model.ts';
import { Coordinator, type Log } from './coordinator.ts';
import { LocalWorker } from './local-worker.ts';
import { classifyStoreError } from './store-guard.ts';

const SECOND = 1000;

describe('store errors: classification', () => {
  // A backend throws the catalogue's errors itself (its db.ts classifies its driver's failures; see
  // src/store/postgres/db.test.ts and src/store/sqlite/db.test.ts): the guard reacts to their codes only.
  const cases: [string, unknown, 'NOT_READY' | 'STORE_BUSY' | null][] = [
    ['the store is unavailable', new GafferError('NOT_READY', 'the store is unavailable: connect ECONNREFUSED'), 'NOT_READY'],
    ['the store is busy', new GafferError('STORE_BUSY', 'the transaction lost a race 6 times'), 'STORE_BUSY'],
    ['a refusal', new GafferError('STALE_LEASE'), null],
    ['a driver error the store let through (a unique violation is a bug, not an outage)', Object.assign(new Error('duplicate key'), { code: '23505' }), null],
    ['a raw socket error is not read by the guard', Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), null],
    ['a plain error', new Error('boom'), null],
    ['not a thing', 'text', null],
  ];
  for (const [what, input, expected] of cases) {
    it(`${what}: ${expected ?? 'passes through'}`, () => {
      assert.equal(classifyStoreError(input)?.code ?? null, expected);
    });
  }
  it('keeps the catalogue errors a store already throws', () => {
    const busy = new GafferError('STORE_BUSY', 'locked');
    assert.equal(classifyStoreError(busy), busy);
  });
});

/** A store whose calls all fail, while `down`, the way the PostgreSQL store fails them when its connection is lost. */
function switchable(store: Store): { store: Store; setDown(down: boolean): void; callsWhileDown(): number } {
  let down = false;
  let calls = 0;
  const proxy = new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function' || prop === 'close') return value;
      return (...args: unknown[]) => {
        if (down) {
          calls++;
          return Promise.reject(new GafferError('NOT_READY', 'the store is unavailable: connect ECONNREFUSED 127.0.0.1:5432'));
        }
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { store: proxy, setDown: (d) => void (down = d), callsWhileDown: () => calls };
}

/** Plays LISTEN/NOTIFY between stores on one database: a submit or retry through one wakes the others' listeners. */
function withWakeups(stores: Store[]): { stores: Store[]; muted: { value: boolean }; sent: () => number } {
  const listeners = stores.map(() => new Set<() => void>());
  const muted = { value: false };
  let sent = 0;
  const notify = (from: number): void => {
    if (muted.value) return;
    sent++;
    listeners.forEach((set, i) => {
      if (i !== from) for (const l of set) queueMicrotask(l);
    });
  };
  const wrapped = stores.map((s, i) =>
    Object.assign(Object.create(s) as Store, {
      submit: async (p: Parameters<Store['submit']>[0]) => {
        const out = await s.submit(p);
        notify(i);
        return out;
      },
      onWake: (l: () => void) => {
        listeners[i]!.add(l);
        return () => void listeners[i]!.delete(l);
      },
    }),
  );
  return { stores: wrapped, muted, sent: () => sent };
}

const flush = async (cs: Coordinator[]): Promise<void> => {
  for (let i = 0; i < 5; i++) {
    for (const c of cs) await c.settled();
    await new Promise((r) => setImmediate(r));
  }
};

/** A log that keeps what it is told, so a test can count the lines an outage writes. */
function memoryLog(): Log & { lines: string[] } {
  const lines: string[] = [];
  return { lines, error: (_o, msg) => void lines.push(`error: ${msg}`), warn: (_o, msg) => void lines.push(`warn: ${msg}`) };
}

describe('coordinator: the store goes away and comes back', () => {
  let dir: string;
  let clock: VirtualClock;
  let raw: Store;
  let sw: ReturnType<typeof switchable>;
  let log: ReturnType<typeof memoryLog>;
  let coordinator: Coordinator;
  let worker: LocalWorker;
  const ran: string[] = [];

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gaffer-guard-'));
    clock = new VirtualClock();
    raw = openSqliteStore({ path: join(dir, 'gaffer.db'), clock, random: seededRandom(3) });
    sw = switchable(raw);
    log = memoryLog();
    coordinator = new Coordinator({ store: sw.store, clock, sweepIntervalMs: 100, random: seededRandom(4), log });
    coordinator.start();
    ran.length = 0;
    worker = new LocalWorker({
      coordinator,
      clock,
      spec: { name: 'w', labels: {}, cores: 4, memoryMb: 4000, gpuIds: [], keys: [] },
      handlers: { work: { slots: 2, handler: (p: Json) => (ran.push(JSON.stringify(p)), p) } },
      heartbeatIntervalMs: 500,
    });
    await worker.start();
  });

  afterEach(async () => {
    worker.freeze();
    await coordinator.stop();
    await raw.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers NOT_READY while the store is away, probes it with bounded backoff, and resumes without losing or repeating a job', async () => {
    const before = await coordinator.submit({ queue: 'work', payload: 'before', idempotencyKey: 'k-before' });
    await clock.advanceAsync(SECOND, () => flush([coordinator]));
    assert.equal((await coordinator.getJob(before.job.id)).state, 'succeeded');

    sw.setDown(true);
    await assert.rejects(coordinator.submit({ queue: 'work', payload: 'during', idempotencyKey: 'k-during' }), (e) => isGafferError(e, 'NOT_READY'));
    await assert.rejects(coordinator.checkReady(), (e) => isGafferError(e, 'NOT_READY'));
    assert.equal(coordinator.health.available, false);

    // A minute away: no sweep or dispatch runs, only probes, whose waits double up to storeRetryMaxDelayMs.
    const outageMs = 60 * SECOND;
    await clock.advanceAsync(outageMs, () => flush([coordinator]));
    const calls = sw.callsWhileDown();
    // Heartbeats of the one worker (every 500 ms) plus the probes: log2(5000/100) ≈ 6 doubling probes, then one per 2.5-5 s.
    const heartbeats = outageMs / 500;
    const probesMax = 6 + Math.ceil(outageMs / (COORDINATOR_DEFAULTS.storeRetryMaxDelayMs / 2));
    assert.ok(calls <= heartbeats + probesMax + 5, `${calls} store calls in a minute away`);
    assert.equal(log.lines.filter((l) => l.startsWith('error')).length, 1, `one error line for the outage: ${log.lines.join('; ')}`);

    sw.setDown(false);
    await clock.advanceAsync(COORDINATOR_DEFAULTS.storeRetryMaxDelayMs, () => flush([coordinator]));
    assert.equal(coordinator.health.available, true, 'a probe found the store back');
    await coordinator.checkReady();
    // The client retries the submit it was refused: one job, run once.
    const retried = await coordinator.submit({ queue: 'work', payload: 'during', idempotencyKey: 'k-during' });
    assert.equal(retried.created, true);
    await clock.advanceAsync(SECOND, () => flush([coordinator]));
    assert.equal((await coordinator.getJob(retried.job.id)).state, 'succeeded');
    assert.deepEqual(ran, ['"before"', '"during"']);
  });

  it('keeps a result the store could not take and lands it once the store is back', async () => {
    const gate = Promise.withResolvers<void>();
    const slow = new LocalWorker({
      coordinator,
      clock,
      spec: { name: 'slow', labels: {}, cores: 4, memoryMb: 4000, gpuIds: [], keys: [] },
      handlers: { slow: { slots: 1, handler: async () => (await gate.promise, 'late') } },
      heartbeatIntervalMs: 500,
    });
    await slow.start();
    const { job } = await coordinator.submit({ queue: 'slow', payload: null, heartbeatTimeoutMs: 30 * SECOND });
    await clock.advanceAsync(SECOND, () => flush([coordinator]));
    assert.equal((await coordinator.getJob(job.id)).state, 'running');

    sw.setDown(true);
    gate.resolve(); // the result is ready while the store is away: the report fails NOT_READY
    await clock.advanceAsync(5 * SECOND, () => flush([coordinator]));
    sw.setDown(false);
    await clock.advanceAsync(6 * SECOND, () => flush([coordinator]));
    slow.freeze();
    const done = await coordinator.getJob(job.id);
    assert.equal(done.state, 'succeeded');
    assert.equal(done.result, 'late');
    const attempts = await raw.listAttempts({ jobId: job.id });
    assert.deepEqual(attempts.map((a) => a.state), ['completed'], 'the attempt kept its lease: nothing ran twice');
  });
});

describe('coordinator: several on one store', () => {
  let dir: string;
  let clock: VirtualClock;
  let raws: Store[];
  let bus: ReturnType<typeof withWakeups>;
  let a: Coordinator;
  let b: Coordinator;
  const POLL_MS = 1000;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'gaffer-shared-'));
    clock = new VirtualClock();
    raws = [0, 1].map((i) => openSqliteStore({ path: join(dir, 'gaffer.db'), clock, random: seededRandom(10 + i) }));
    bus = withWakeups(raws);
    [a, b] = bus.stores.map((store) => new Coordinator({ store, clock, sweepIntervalMs: 100, pollIntervalMs: POLL_MS })) as [Coordinator, Coordinator];
    a.start();
    b.start();
  });

  afterEach(async () => {
    await a.stop();
    await b.stop();
    for (const s of raws) await s.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function workerOn(c: Coordinator, name: string, seen: string[]): Promise<LocalWorker> {
    const w = new LocalWorker({
      coordinator: c,
      clock,
      spec: { name, labels: {}, cores: 4, memoryMb: 4000, gpuIds: [], keys: [] },
      handlers: { work: { slots: 1, handler: (p: Json) => (seen.push(name), p) } },
      heartbeatIntervalMs: 500,
    });
    await w.start();
    return w;
  }

  it('wakes the coordinator of an idle worker when a job is submitted through another', async () => {
    const seen: string[] = [];
    const w = await workerOn(b, 'on-b', seen);
    await flush([a, b]);
    const { job } = await a.submit({ queue: 'work', payload: 1 });
    // No time passes: the notification alone makes b dispatch.
    await flush([a, b]);
    assert.deepEqual(seen, ['on-b']);
    assert.equal(bus.sent(), 1);
    assert.equal((await a.getJob(job.id)).state, 'succeeded');
    w.freeze();
  });

  it('finds the job by polling when the notification is lost, within pollIntervalMs', async () => {
    const seen: string[] = [];
    const w = await workerOn(b, 'on-b', seen);
    await flush([a, b]);
    bus.muted.value = true;
    await a.submit({ queue: 'work', payload: 1 });
    await flush([a, b]);
    assert.deepEqual(seen, [], 'no notification, no poll yet');
    await clock.advanceAsync(POLL_MS, () => flush([a, b]));
    assert.deepEqual(seen, ['on-b']);
    w.freeze();
  });

  it('answers a result wait on one coordinator for a job that ended through another', async () => {
    const seen: string[] = [];
    const w = await workerOn(b, 'on-b', seen);
    const { job } = await a.submit({ queue: 'work', payload: 7 });
    const waiting = a.waitForJob(job.id, 30 * SECOND);
    await flush([a, b]);
    assert.deepEqual(seen, ['on-b']);
    await clock.advanceAsync(POLL_MS, () => flush([a, b]));
    const done = await waiting;
    assert.equal(done.state, 'succeeded');
    assert.equal(done.result, 7);
    w.freeze();
  });
});
