// Store conformance, workers: registration, draining, disconnects, affinity
// keys, quarantine and the worker list; heartbeats and progress.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LIMITS } from '../../types/limits.ts';
import { type ContractContext, SECOND, sorted } from './context.ts';

export function workerTests(ctx: ContractContext): void {
  const { submit, submitOne, addWorker, claim, claimOne, attemptOf, ref, complete } = ctx;

  // ---- Workers ----

  describe('workers', () => {
    it('gives nothing to a worker not seen within the offline window, until it heartbeats', async () => {
      await addWorker('w1');
      await submitOne({});
      ctx.clock.advance(31 * SECOND); // the default offline window is 30 s
      assert.deepEqual(await claim('w1'), []);
      assert.equal((await ctx.store.getWorker({ id: 'w1' }))?.state, 'offline');
      await ctx.store.heartbeat({ workerId: 'w1' });
      assert.equal((await claim('w1')).length, 1);
    });

    it('registers a worker, making an id when none is given', async () => {
      const w = await ctx.store.upsertWorker({
        spec: { name: 'anon', labels: { a: 'b' }, cores: 4, memoryMb: 100, gpuIds: [0], queues: { q: 1 }, keys: ['k'], host: 'sealer-7', pid: 4242 },
      });
      assert.ok(w.id.length > 0);
      assert.deepEqual(w, {
        id: w.id,
        name: 'anon',
        labels: { a: 'b' },
        cores: 4,
        memoryMb: 100,
        gpuIds: [0],
        queues: { q: 1 },
        keys: ['k'],
        state: 'idle',
        draining: false,
        quarantined: false,
        quarantineReason: null,
        operator: null,
        host: 'sealer-7',
        pid: 4242,
        reputation: { valid: 0, invalid: 0, timedOut: 0, credit: LIMITS.workerSlotsMax, streak: 0, soloSinceCheck: 0 },
        checks: {},
        connected: true,
        connectedAt: ctx.t0,
        lastSeenAt: ctx.t0,
        running: {},
        pausedQueues: [],
        createdAt: ctx.t0,
      });
      assert.deepEqual(await ctx.store.getWorker({ id: w.id }), w);
      assert.equal(await ctx.store.getWorker({ id: 'nobody' }), null);
    });

    it('gives nothing to draining or disconnected workers, and work again when they return', async () => {
      await addWorker('drain');
      await addWorker('gone');
      const [j1, j2] = await submit({}, {});
      assert.ok(j1 && j2);
      await ctx.store.setWorkerDraining({ workerId: 'drain', draining: true });
      await ctx.store.disconnectWorker({ workerId: 'gone' });
      assert.deepEqual(await claim(['drain', 'gone']), []);
      await ctx.store.setWorkerDraining({ workerId: 'drain', draining: false });
      assert.deepEqual((await claim(['drain', 'gone'], 1)).map((a) => [a.jobId, a.workerId]), [[j1.id, 'drain']]);
      await addWorker('gone'); // reconnects
      assert.deepEqual((await claim('gone')).map((a) => [a.jobId, a.workerId]), [[j2.id, 'gone']]);
    });

    it('refuses to drain an unknown worker', async () => {
      await assert.rejects(ctx.store.setWorkerDraining({ workerId: 'nobody', draining: true }), { code: 'WORKER_NOT_FOUND' });
    });

    it('holds and releases affinity keys, and claims follow the keys held now', async () => {
      await addWorker('w1', { keys: ['a'] });
      const job = await submitOne({ affinity: { key: 'sector-9', mode: 'require' } });
      assert.deepEqual(await claim('w1'), []);
      const held = await ctx.store.updateWorkerKeys({ workerId: 'w1', hold: ['sector-9', 'a', 'b'] });
      assert.deepEqual(held.keys, ['a', 'sector-9', 'b'], 'unique, in the order first held');
      const a = await claimOne('w1');
      assert.equal(a.jobId, job.id);
      const released = await ctx.store.updateWorkerKeys({ workerId: 'w1', hold: ['c'], release: ['a', 'c', 'never-held'] });
      assert.deepEqual(released.keys, ['sector-9', 'b'], 'a key both held and released ends up released');
      assert.deepEqual((await ctx.store.getWorker({ id: 'w1' }))?.keys, ['sector-9', 'b']);
      await assert.rejects(ctx.store.updateWorkerKeys({ workerId: 'nobody', hold: ['x'] }), { code: 'WORKER_NOT_FOUND' });
    });

    it('refuses to hold more affinity keys than the bound, changing nothing', async () => {
      await addWorker('w1', { keys: ['a'] });
      const many = Array.from({ length: LIMITS.workerKeysMax }, (_, i) => `k${i}`);
      await assert.rejects(ctx.store.updateWorkerKeys({ workerId: 'w1', hold: many }), { code: 'INVALID_INPUT' });
      assert.deepEqual((await ctx.store.getWorker({ id: 'w1' }))?.keys, ['a']);
    });

    it('gives nothing to a quarantined worker', async () => {
      await addWorker('bad');
      await addWorker('good');
      await submitOne();
      await ctx.store.setWorkerQuarantine({ workerId: 'bad', quarantined: true });
      assert.deepEqual(await claim('bad'), []);
      assert.deepEqual((await claim(['bad', 'good'])).map((a) => a.workerId), ['good']);
      assert.equal((await ctx.store.getWorker({ id: 'bad' }))?.state, 'quarantined');
    });

    it('lists workers as idle, busy, draining or offline, with running counts per queue', async () => {
      await addWorker('idle', { queues: { a: 2, b: 2 } });
      await addWorker('busy', { queues: { a: 2, b: 2 } });
      await addWorker('drain', { queues: { a: 2, b: 2 } });
      await addWorker('off', { queues: { a: 2, b: 2 } });
      await submit({ queue: 'a' }, { queue: 'a' }, { queue: 'b' }, { queue: 'b' });
      const busy = await claim('busy', 3); // a, a, b in age order
      assert.equal(busy.length, 3);
      const draining = await claimOne('drain'); // the last b
      await ctx.store.setWorkerDraining({ workerId: 'drain', draining: true });
      await ctx.store.disconnectWorker({ workerId: 'off' });
      const view = async () =>
        Object.fromEntries((await ctx.store.listWorkers()).map((w) => [w.id, [w.state, w.running, w.connected, w.draining]]));
      assert.deepEqual(await view(), {
        idle: ['idle', {}, true, false],
        busy: ['busy', { a: 2, b: 1 }, true, false],
        drain: ['draining', { b: 1 }, true, true],
        off: ['offline', {}, false, false],
      });
      for (const a of busy) await complete(a);
      await complete(draining);
      assert.deepEqual(await view(), {
        idle: ['idle', {}, true, false],
        busy: ['idle', {}, true, false],
        drain: ['draining', {}, true, true],
        off: ['offline', {}, false, false],
      });
    });

    it('lists the workers named, and summaries without labels and keys but with their state and slots', async () => {
      await addWorker('w1', { labels: { zone: 'eu' }, keys: ['k1'] });
      await addWorker('w2', { keys: ['k2'] });
      await addWorker('w3');
      await submitOne();
      await claimOne('w1');
      assert.deepEqual((await ctx.store.listWorkers({ ids: ['w3', 'w1', 'nobody'] })).map((w) => [w.id, w.keys]), [['w1', ['k1']], ['w3', []]]);
      assert.deepEqual(await ctx.store.listWorkers({ ids: [] }), []);
      const summaries = await ctx.store.listWorkers({ summary: true });
      const whole = await ctx.store.listWorkers();
      assert.deepEqual(summaries.map((w) => [w.id, w.labels, w.keys]), [['w1', {}, []], ['w2', {}, []], ['w3', {}, []]]);
      assert.deepEqual(
        summaries.map((w) => ({ ...w, labels: {}, keys: [] })),
        whole.map((w) => ({ ...w, labels: {}, keys: [] })),
        'the rest as a whole read has it',
      );
      assert.deepEqual([summaries[0]!.state, summaries[0]!.running], ['busy', { q: 1 }]);
    });
  });

  // ---- Heartbeats and progress ----

  describe('heartbeat', () => {
    it('extends every lease of the worker in one call and marks leased attempts running', async () => {
      await addWorker('w1');
      await addWorker('w2');
      await submit({ heartbeatTimeoutMs: 10_000 }, { heartbeatTimeoutMs: 10_000 });
      const mine = await claim('w1');
      assert.equal(mine.length, 2);
      await submitOne({ heartbeatTimeoutMs: 10_000 });
      const other = await claimOne('w2');
      ctx.clock.advance(4_000);
      const hb = await ctx.store.heartbeat({ workerId: 'w1' });
      assert.deepEqual(sorted(hb.extended), sorted(mine.map((a) => a.attemptId)));
      assert.deepEqual(hb.revoked, []);
      for (const a of mine) {
        const at = await attemptOf(a);
        assert.deepEqual(
          [at.state, at.startedAt, at.heartbeatAt, at.leaseExpiresAt],
          ['running', ctx.t0 + 4_000, ctx.t0 + 4_000, ctx.t0 + 14_000],
        );
      }
      const untouched = await attemptOf(other);
      assert.deepEqual([untouched.state, untouched.leaseExpiresAt], ['leased', ctx.t0 + 10_000]);
      ctx.clock.advance(6_001); // t0 + 10_001: only w2's lease has run out
      const swept = await ctx.store.expireAttempts({ limit: 100 });
      assert.deepEqual(swept.endedAttempts, [{ attemptId: other.attemptId, workerId: 'w2', reason: 'LEASE_LOST' }]);
    });

    it('with a list, extends the named current leases and names the rest revoked', async () => {
      await addWorker('w1');
      await addWorker('w2');
      await submit({ heartbeatTimeoutMs: 10_000 }, { heartbeatTimeoutMs: 10_000 }, { heartbeatTimeoutMs: 10_000 });
      const [ok, wrongLease, cancelled] = await claim('w1');
      assert.ok(ok && wrongLease && cancelled);
      await submitOne({ heartbeatTimeoutMs: 10_000 });
      const elsewhere = await claimOne('w2');
      await ctx.store.cancel({ jobId: cancelled.jobId });
      ctx.clock.advance(2_000);
      const hb = await ctx.store.heartbeat({
        workerId: 'w1',
        attempts: [
          ref(ok),
          { attemptId: wrongLease.attemptId, lease: 'f'.repeat(32) },
          ref(cancelled),
          ref(elsewhere),
          { attemptId: '01ARZ3NDEKTSV4RRFFQ69G5FAV', lease: 'f'.repeat(32) },
        ],
      });
      assert.deepEqual(hb.extended, [ok.attemptId]);
      assert.deepEqual(sorted(hb.revoked), sorted([wrongLease.attemptId, cancelled.attemptId, elsewhere.attemptId, '01ARZ3NDEKTSV4RRFFQ69G5FAV']));
      assert.equal((await attemptOf(ok)).leaseExpiresAt, ctx.t0 + 12_000);
      assert.equal((await attemptOf(wrongLease)).leaseExpiresAt, ctx.t0 + 10_000);
      assert.equal((await attemptOf(elsewhere)).leaseExpiresAt, ctx.t0 + 10_000);
      assert.equal((await attemptOf(cancelled)).state, 'cancelled');
    });

    it('with many refs, extends exactly the leases the worker holds, in one call, and names every other ref revoked', async () => {
      await addWorker('w1', { queues: { q: 64 } });
      await addWorker('w2');
      await submit(...Array.from({ length: 40 }, () => ({ heartbeatTimeoutMs: 10_000 })));
      const mine = await claim('w1');
      assert.equal(mine.length, 40);
      await submitOne({ heartbeatTimeoutMs: 10_000 });
      const elsewhere = await claimOne('w2');
      const [unnamed, wrongLease, ...named] = mine;
      assert.ok(unnamed && wrongLease);
      ctx.clock.advance(3_000);
      const madeUp = Array.from({ length: 2_000 }, (_, i) => ({ attemptId: `01MADEUP${String(i).padStart(6, '0')}`, lease: 'f'.repeat(32) }));
      // Another worker's attempt with its own valid lease, and a held attempt with the lease of another: fenced off, both.
      const crossed = { attemptId: wrongLease.attemptId, lease: elsewhere.lease };
      const hb = await ctx.store.heartbeat({ workerId: 'w1', attempts: [...madeUp.slice(0, 1_000), ...named.map(ref), ref(elsewhere), crossed, ...madeUp.slice(1_000)] });
      assert.deepEqual(sorted(hb.extended), sorted(named.map((a) => a.attemptId)));
      assert.deepEqual(sorted(hb.revoked), sorted([...madeUp.map((r) => r.attemptId), elsewhere.attemptId, wrongLease.attemptId]));
      for (const a of named) assert.equal((await attemptOf(a)).leaseExpiresAt, ctx.t0 + 13_000);
      for (const a of [unnamed, wrongLease, elsewhere]) assert.equal((await attemptOf(a)).leaseExpiresAt, ctx.t0 + 10_000, 'not extended');
    });

    it('does not revive a lease that has already run out', async () => {
      await addWorker('w1');
      await submitOne({ heartbeatTimeoutMs: 10_000 });
      const a = await claimOne('w1');
      ctx.clock.advance(10_001);
      assert.deepEqual(await ctx.store.heartbeat({ workerId: 'w1' }), { extended: [], revoked: [] });
      assert.deepEqual(await ctx.store.heartbeat({ workerId: 'w1', attempts: [ref(a)] }), { extended: [], revoked: [a.attemptId] });
      const swept = await ctx.store.expireAttempts({ limit: 100 });
      assert.deepEqual(swept.endedAttempts.map((e) => e.attemptId), [a.attemptId]);
    });

    it('says when a heartbeat brings back a worker marked disconnected', async () => {
      await addWorker('w1');
      await ctx.store.disconnectWorker({ workerId: 'w1' });
      assert.deepEqual(await ctx.store.heartbeat({ workerId: 'w1' }), { extended: [], revoked: [], revived: true });
      assert.deepEqual(await ctx.store.heartbeat({ workerId: 'w1', attempts: [] }), { extended: [], revoked: [] });
      assert.equal((await ctx.store.getWorker({ id: 'w1' }))?.connected, true);
    });

    it('refuses a heartbeat from an unknown worker', async () => {
      await assert.rejects(ctx.store.heartbeat({ workerId: 'nobody' }), { code: 'WORKER_NOT_FOUND' });
    });

    it('records progress under the current lease, which is also a heartbeat', async () => {
      await addWorker('w1');
      await submitOne({ heartbeatTimeoutMs: 10_000 });
      const a = await claimOne('w1');
      ctx.clock.advance(3_000);
      await ctx.store.progress({ ...ref(a), progress: { pct: 50 } });
      const at = await attemptOf(a);
      assert.deepEqual([at.state, at.progress, at.startedAt, at.leaseExpiresAt], ['running', { pct: 50 }, ctx.t0 + 3_000, ctx.t0 + 13_000]);
      await assert.rejects(ctx.store.progress({ attemptId: a.attemptId, lease: 'f'.repeat(32), progress: 1 }), { code: 'STALE_LEASE' });
      await assert.rejects(ctx.store.progress({ attemptId: 'nope', lease: a.lease, progress: 1 }), { code: 'ATTEMPT_NOT_FOUND' });
      assert.deepEqual((await attemptOf(a)).progress, { pct: 50 });
    });
  });
}
