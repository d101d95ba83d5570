// The dispatcher on a store that answers claims by hand: kicks coalesce, one
// claim at a time, batches and rounds, the store's availability, group commit.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ClaimParams, Store } from '../store/store.ts';
import { COORDINATOR_DEFAULTS, LIMITS } from '../types/limits.ts';
import type { Assignment } from '../types/model.ts';
import { VirtualClock } from '../types/clock.ts';
import { Dispatcher, freesCapacity, groupByWorker } from './dispatcher.ts';
import { everyWorker, OpenSlots } from './open-slots.ts';

interface FakeClaims {
  store: Store;
  /** Claims asked for and not yet answered. */
  pending: { params: ClaimParams; answer: (a: Assignment[]) => void }[];
  calls: number;
}

function fakeStore(groupCommit = false): FakeClaims {
  const fake: FakeClaims = { store: null as unknown as Store, pending: [], calls: 0 };
  fake.store = {
    capabilities: { shared: false, groupCommit },
    claim: (params: ClaimParams) => {
      fake.calls++;
      return new Promise<Assignment[]>((answer) => fake.pending.push({ params, answer }));
    },
  } as unknown as Store;
  return fake;
}

const assignment = (i: number, workerId = 'w1'): Assignment => ({ jobId: `j${i}`, attemptId: `a${i}`, workerId }) as unknown as Assignment;
const batch = (n: number): Assignment[] => Array.from({ length: n }, (_, i) => assignment(i));
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

function dispatcher(fake: FakeClaims, extra: { available?: () => boolean; workers?: () => string[]; clock?: VirtualClock } = {}) {
  const delivered: Assignment[][] = [];
  const errors: string[] = [];
  const claimTimes: (number | null)[] = [];
  let loops = 0;
  const d = new Dispatcher({
    store: fake.store,
    clock: extra.clock ?? new VirtualClock(),
    place: () => [],
    pool: everyWorker(extra.workers ?? (() => ['w1'])),
    deliver: (a) => void delivered.push([...a]),
    ...(extra.available ? { available: extra.available } : {}),
    afterLoop: async (lastClaimAtMs) => void (loops++, claimTimes.push(lastClaimAtMs)),
    onError: (_err, msg) => void errors.push(msg),
  });
  return { d, delivered, errors, claimTimes, loops: () => loops };
}

describe('dispatcher', () => {
  it('keeps one claim in flight and folds the kicks that come meanwhile into one more pass', async () => {
    const fake = fakeStore();
    const { d, delivered, loops } = dispatcher(fake);
    d.start();
    d.kick();
    d.kick();
    await turn();
    assert.equal(fake.pending.length, 1, 'one claim in flight');
    fake.pending.shift()!.answer([assignment(1)]);
    await turn();
    assert.deepEqual(delivered.map((a) => a.length), [1]);
    assert.equal(fake.pending.length, 1, 'the kicks during the claim run one more pass');
    fake.pending.shift()!.answer([]);
    await d.idle();
    assert.equal(fake.calls, 2);
    assert.equal(loops(), 1, 'afterLoop runs once, at the end of the loop');
    assert.equal(d.current(), null);
  });

  it('claims again while a claim comes back full, dispatchMaxRounds rounds a pass, then another pass', async () => {
    const fake = fakeStore();
    const { d, delivered, loops } = dispatcher(fake);
    d.start();
    for (let round = 0; round < COORDINATOR_DEFAULTS.dispatchMaxRounds; round++) {
      await turn();
      const claim = fake.pending.shift()!;
      assert.equal(claim.params.maxJobs, LIMITS.claimBatchMaxJobs);
      claim.answer(batch(LIMITS.claimBatchMaxJobs));
    }
    await turn();
    assert.equal(fake.calls, COORDINATOR_DEFAULTS.dispatchMaxRounds + 1, 'a pass out of rounds is followed by another');
    fake.pending.shift()!.answer([]);
    await d.idle();
    assert.equal(delivered.length, COORDINATOR_DEFAULTS.dispatchMaxRounds);
    assert.equal(loops(), 1);
  });

  it('tells afterLoop when its last claim started, so that a job ready since is not missed', async () => {
    const fake = fakeStore();
    const clock = new VirtualClock(5_000);
    let ids: string[] = [];
    const { d, claimTimes } = dispatcher(fake, { clock, workers: () => ids });
    d.start();
    await d.idle();
    assert.deepEqual(claimTimes, [null], 'no worker, no claim');
    ids = ['w1'];
    d.kick();
    await turn();
    clock.advance(40);
    fake.pending.shift()!.answer([]);
    await d.idle();
    assert.deepEqual(claimTimes, [null, 5_000], 'the time before the claim, not after it');
  });

  it('claims for windows of open workers: a small one first, wider while claims fill them, and no worker twice for nothing', async () => {
    const fake = fakeStore();
    const slots = new OpenSlots(() => true);
    for (let i = 0; i < 100; i++) slots.attach(`w${String(i).padStart(3, '0')}`, { name: 'w', labels: {}, cores: 1, memoryMb: 1, gpuIds: [], queues: { q: 1 }, keys: [] });
    const delivered: Assignment[] = [];
    const d = new Dispatcher({ store: fake.store, clock: new VirtualClock(), place: () => [], pool: slots, deliver: (a) => {
      slots.delivered(a);
      delivered.push(...a);
    }, onError: () => {} });
    d.start();
    const sizes: number[] = [];
    for (let i = 0; i < 2; i++) {
      await turn();
      const claim = fake.pending.shift()!;
      sizes.push(claim.params.workerIds.length);
      claim.answer(claim.params.workerIds.map((w, k) => assignment(k, w)));
    }
    await d.idle();
    assert.deepEqual(sizes, [COORDINATOR_DEFAULTS.claimWorkersFirst, 100 - COORDINATOR_DEFAULTS.claimWorkersFirst]);
    assert.equal(fake.calls, 2, 'every worker full: no third claim');
    assert.equal(new Set(delivered.map((a) => a.workerId)).size, 100);
    assert.equal(slots.openCount, 0);
  });

  it('claims for the workers it is given, and not at all when there are none', async () => {
    const fake = fakeStore();
    let ids: string[] = [];
    const { d } = dispatcher(fake, { workers: () => ids });
    d.start();
    await d.idle();
    assert.equal(fake.calls, 0);
    ids = ['a', 'b'];
    d.kick();
    await turn();
    assert.deepEqual(fake.pending[0]!.params.workerIds, ['a', 'b']);
    fake.pending.shift()!.answer([]);
    await d.idle();
  });

  it('waits while the store is away, and takes kicks only between start and stop', async () => {
    const fake = fakeStore();
    let up = false;
    const { d } = dispatcher(fake, { available: () => up });
    d.kick();
    d.start();
    await d.idle();
    assert.equal(fake.calls, 0, 'nothing before start, nothing while the store is away');
    up = true;
    d.kick();
    await turn();
    fake.pending.shift()!.answer([]);
    await d.idle();
    assert.equal(fake.calls, 1);
    d.stop();
    d.kick();
    await d.idle();
    assert.equal(fake.calls, 1, 'nothing after stop');
  });

  it('reports a failed claim and runs again on the next kick', async () => {
    const fake = fakeStore();
    const { d, errors } = dispatcher(fake);
    d.start();
    await turn();
    fake.pending.shift()!.answer(Promise.reject(new Error('boom')) as unknown as Assignment[]);
    await d.idle();
    assert.equal(errors.length, 1);
    d.kick();
    await turn();
    assert.equal(fake.pending.length, 1);
    fake.pending.shift()!.answer([]);
    await d.idle();
  });

  it('dispatches with a submit only on a store with group commit', async () => {
    for (const groupCommit of [false, true]) {
      const fake = fakeStore(groupCommit);
      const { d } = dispatcher(fake);
      d.start();
      await turn();
      fake.pending.shift()!.answer([]);
      await d.idle();
      d.kickWithSubmit();
      await turn();
      assert.equal(fake.pending.length, groupCommit ? 1 : 0, `groupCommit ${groupCommit}`);
      for (const c of fake.pending.splice(0)) c.answer([]);
      await d.idle();
    }
  });
});

describe('freesCapacity and groupByWorker', () => {
  it('counts a requeued job, a cancelled attempt or an ended attempt as freeing', () => {
    assert.equal(freesCapacity([]), false);
    assert.equal(freesCapacity([{ jobId: 'j', state: 'expired', cancelledAttempts: [] }]), false);
    assert.equal(freesCapacity([{ jobId: 'j', state: 'queued', cancelledAttempts: [] }]), true);
    assert.equal(freesCapacity([{ jobId: 'j', state: 'cancelled', cancelledAttempts: [{ attemptId: 'a', workerId: 'w' }] }]), true);
    assert.equal(freesCapacity([], [{ attemptId: 'a', workerId: 'w', reason: 'TIMEOUT' }]), true);
  });

  it('groups by worker in order of first appearance', () => {
    const grouped = groupByWorker([assignment(1, 'b'), assignment(2, 'a'), assignment(3, 'b')]);
    assert.deepEqual([...grouped].map(([w, list]) => [w, list.map((a) => a.jobId)]), [['b', ['j1', 'j3']], ['a', ['j2']]]);
  });
});
