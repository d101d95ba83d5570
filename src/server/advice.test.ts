// GET /v1/advice over a real socket, on a coordinator in virtual time: a
// three-phase pipeline with known run times, in-process workers, a real
// SQLite file, and the advice checked against figures worked out by hand.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import type { FastifyInstance } from 'fastify';
import { Coordinator } from '../coordinator/coordinator.ts';
import { LocalWorker, type Handler } from '../coordinator/local-worker.ts';
import { openSqliteStore, type SqliteStore } from '../store/sqlite/store.ts';
import { seededRandom, VirtualClock } from '../types/clock.ts';
import { Auth } from './auth.ts';
import { buildHttpApp } from './http.ts';

const MIN = 60_000;
const CLIENT = 'client-secret';
const RUN_MS: Record<string, number> = { 'seal.ap': 10 * MIN, 'seal.pc1': 30 * MIN, 'seal.c2': 5 * MIN };

// One sector every 10 minutes for an hour (t0, t0 + 10 min, ..., t0 + 50 min), each a chain
// seal.ap (10 min) -> seal.pc1 (30 min) -> seal.c2 (5 min), submitted together. Workers:
// sealer-1 {seal.ap: 1, seal.pc1: 2}, prover-1 {seal.c2: 1}. Advice at t0 + 60 min over 60 min.
//
// By hand (rates per hour):
//   arrivals: 6 jobs of each queue in 1 h = 6/h; edges ap -> pc1 and pc1 -> c2 carry 6 children
//   of 6 parent jobs each (ratio 1), so the fed rates are 6/h too.
//   seal.ap:  1 slot,  capacity 1 x 60/10 = 6/h,  utilisation 6/6 = 1,    Little 6 x 10/60 = 1,   short 0
//   seal.pc1: 2 slots, capacity 2 x 60/30 = 4/h,  utilisation 6/4 = 1.5,  Little 6 x 30/60 = 3,   short 1
//   seal.c2:  1 slot,  capacity 1 x 60/5  = 12/h, utilisation 6/12 = 0.5, Little 6 x 5/60 = 0.5 -> 1, short 0
//   Bottleneck seal.pc1, headroom 1/1.5 = 2/3.
//   One more sealer: ap 2 slots (0.5), pc1 4 slots (0.75), c2 (0.5): headroom 1/0.75 = 4/3.
//   One more prover changes nothing: 2/3. Plan: one sealer, headroom 4/3.
// Every run time is exact: a handler finishes on a virtual timer, and the clock settles the
// coordinator after each timer, so an attempt finishes at its lease time plus its run time.
describe('GET /v1/advice in virtual time', () => {
  let dir: string;
  let clock: VirtualClock;
  let store: SqliteStore;
  let coordinator: Coordinator;
  let app: FastifyInstance;
  let base: string;
  const workers: LocalWorker[] = [];

  const settle = async (): Promise<void> => {
    for (let i = 0; i < 5; i++) {
      await coordinator.settled();
      await new Promise((r) => setImmediate(r));
    }
  };

  const sleeper = (queue: string): Handler => () => new Promise((resolve) => clock.setTimeout(() => resolve({ queue }), RUN_MS[queue]!));

  async function worker(name: string, queues: Record<string, number>): Promise<void> {
    const handlers = Object.fromEntries(Object.entries(queues).map(([q, slots]) => [q, { slots, handler: sleeper(q) }]));
    const w = new LocalWorker({ coordinator, clock, spec: { name, labels: {}, cores: 16, memoryMb: 64_000, gpuIds: [], keys: [] }, handlers, heartbeatIntervalMs: 10 * MIN });
    await w.start();
    workers.push(w);
  }

  async function submitSector(i: number): Promise<void> {
    const long = { heartbeatTimeoutMs: 3600 * 1000, timeoutMs: 3600 * 1000 };
    const { job: ap } = await coordinator.submit({ queue: 'seal.ap', payload: { sector: i }, ...long });
    const { job: pc1 } = await coordinator.submit({ queue: 'seal.pc1', payload: { sector: i }, dependsOn: [ap.id], ...long });
    await coordinator.submit({ queue: 'seal.c2', payload: { sector: i }, dependsOn: [pc1.id], ...long });
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gaffer-advice-'));
    clock = new VirtualClock();
    store = openSqliteStore({ path: join(dir, 'gaffer.db'), clock, random: seededRandom(11) });
    coordinator = new Coordinator({ store, clock, sweepIntervalMs: 10 * MIN });
    coordinator.start();
    app = await buildHttpApp({ coordinator, auth: new Auth([{ token: CLIENT, scopes: ['client'] }]), logger: pino({ level: 'silent' }) });
    await app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    await worker('sealer-1', { 'seal.ap': 1, 'seal.pc1': 2 });
    await worker('prover-1', { 'seal.c2': 1 });
  });

  after(async () => {
    for (const w of workers.splice(0)) w.freeze();
    await app.close();
    await coordinator.stop();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('finds the bottleneck, the balancing slots and the worker to add', async () => {
    const t0 = clock.now();
    for (let i = 0; i < 6; i++) {
      await submitSector(i);
      await settle();
      await clock.advanceAsync(10 * MIN, settle);
    }
    assert.equal(clock.now(), t0 + 60 * MIN);
    const res = await fetch(`${base}/v1/advice?windowMs=${60 * MIN}`, { headers: { authorization: `Bearer ${CLIENT}` } });
    assert.equal(res.status, 200);
    const advice = await res.json();
    assert.deepEqual([advice.at, advice.windowMs, advice.workersCounted], [t0 + 60 * MIN, 60 * MIN, 2]);
    const row = (q: string) => {
      const p = advice.phases.find((x: { queue: string }) => x.queue === q);
      return [p.status, p.runTimeMeanMs, p.slots, p.capacityPerHour, p.submittedPerHour, p.arrivalPerHour, p.utilisation, p.slotsNeeded, p.slotsToBalance, p.slotsShort];
    };
    assert.deepEqual(row('seal.ap'), ['keeping-up', 10 * MIN, 1, 6, 6, 6, 1, 1, 1, 0]);
    assert.deepEqual(row('seal.pc1'), ['overloaded', 30 * MIN, 2, 4, 6, 6, 1.5, 3, 3, 1]);
    assert.deepEqual(row('seal.c2'), ['keeping-up', 5 * MIN, 1, 12, 6, 6, 0.5, 0.5, 1, 0]);
    assert.equal(advice.bottleneck, 'seal.pc1');
    assert.ok(Math.abs(advice.headroom - 2 / 3) < 1e-9, String(advice.headroom));
    assert.deepEqual(
      advice.edges.map((e: { from: string; to: string; children: number; fromJobs: number }) => [e.from, e.to, e.children, e.fromJobs]),
      [['seal.ap', 'seal.pc1', 6, 6], ['seal.pc1', 'seal.c2', 6, 6]],
    );
    assert.deepEqual(
      advice.kinds.map((k: { queues: object; workers: number; examples: string[] }) => [k.queues, k.workers, k.examples]),
      [[{ 'seal.ap': 1, 'seal.pc1': 2 }, 1, ['sealer-1']], [{ 'seal.c2': 1 }, 1, ['prover-1']]],
    );
    assert.ok(Math.abs(advice.kinds[0].headroomWithOneMore - 4 / 3) < 1e-9);
    assert.ok(Math.abs(advice.kinds[1].headroomWithOneMore - 2 / 3) < 1e-9);
    assert.deepEqual(advice.add, [{ queues: { 'seal.ap': 1, 'seal.pc1': 2 }, workers: 1 }]);
    assert.ok(Math.abs(advice.headroomAfterAdd - 4 / 3) < 1e-9);
    assert.equal(advice.edgesTruncated, false);
  });

  it('refuses a window out of range', async () => {
    const res = await fetch(`${base}/v1/advice?windowMs=10`, { headers: { authorization: `Bearer ${CLIENT}` } });
    assert.equal(res.status, 400);
  });
});
