// The dispatcher's windows over a real store (SQLite in memory): a free slot
// is found wherever it is in the rotation, whatever the other workers' state,
// and a pass over a large idle pool ends.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { place } from '../scheduler/index.ts';
import { openSqliteStore } from '../store/sqlite/store.ts';
import type { Store } from '../store/store.ts';
import { seededRandom, VirtualClock } from '../types/clock.ts';
import { COORDINATOR_DEFAULTS, LIMITS } from '../types/limits.ts';
import type { Assignment, WorkerSpec } from '../types/model.ts';
import { Dispatcher } from './dispatcher.ts';
import { OpenSlots } from './open-slots.ts';
import { normalizeJob } from './validate.ts';

const spec = (name: string, over: Partial<WorkerSpec> = {}): WorkerSpec => ({ name, labels: {}, cores: 4, memoryMb: 1024, gpuIds: [], queues: { q: 1 }, keys: [], ...over });

describe('dispatch windows on a real store', () => {
  let store: Store;
  let slots: OpenSlots;
  let dispatcher: Dispatcher;
  let delivered: Assignment[];
  let claims: number;

  beforeEach(() => {
    const clock = new VirtualClock();
    store = openSqliteStore({ path: ':memory:', clock, random: seededRandom(5), trust: { creditInitialSlots: LIMITS.workerSlotsMax } });
    slots = new OpenSlots(() => true);
    delivered = [];
    claims = 0;
    const counted: Store = Object.create(store) as Store;
    counted.claim = (p) => {
      claims++;
      return store.claim(p);
    };
    dispatcher = new Dispatcher({ store: counted, clock, place, pool: slots, deliver: (a) => {
      slots.delivered(a);
      delivered.push(...a);
    }, onError: (err) => assert.fail(String(err)) });
    dispatcher.start();
  });

  afterEach(async () => {
    dispatcher.stop();
    await dispatcher.idle();
    await store.close();
  });

  async function workers(n: number, over: (i: number) => Partial<WorkerSpec> = () => ({})): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const s = spec(`w${i}`, over(i));
      const w = await store.upsertWorker({ spec: s });
      slots.attach(w.id, s);
      ids.push(w.id);
    }
    return ids;
  }

  async function dispatch(): Promise<void> {
    dispatcher.kick();
    await dispatcher.idle();
  }

  it('finds the one worker whose queue is not paused, last in the rotation', async () => {
    const ids = await workers(100);
    for (const id of ids.slice(0, 99)) await store.setWorkerQueuePaused({ workerId: id, queue: 'q', paused: true });
    await store.submit({ jobs: [normalizeJob({ queue: 'q', payload: 1 })] });
    await dispatch();
    assert.deepEqual(delivered.map((a) => a.workerId), [ids[99]]);
  });

  it('finds the one worker with the cores a job needs, among alike workers that are busy', async () => {
    await workers(100);
    await store.submit({ jobs: Array.from({ length: 99 }, (_, i) => normalizeJob({ queue: 'q', payload: i, requires: { cores: 3 } })) });
    await dispatch();
    assert.equal(delivered.length, 99);
    // Every worker has a free slot again as far as the coordinator knows, but 99 of them have 1 core free.
    for (const a of delivered) slots.reopen(a.workerId);
    await store.submit({ jobs: [normalizeJob({ queue: 'q', payload: 'big', requires: { cores: 4 } })] });
    delivered.length = 0;
    await dispatch();
    assert.equal(delivered.length, 1, 'the 4-core job found the idle worker');
  });

  it('ends a pass over two thousand idle workers of distinct shapes and keys, with a job nobody can take', async () => {
    await workers(2100, (i) => ({ labels: { host: `h${i}` }, keys: [`k${i}`] }));
    await store.submit({ jobs: [normalizeJob({ queue: 'q', payload: 0, requires: { labels: { gpu: 'a100' } } })] });
    await dispatch();
    assert.equal(delivered.length, 0);
    assert.ok(claims <= COORDINATOR_DEFAULTS.dispatchMaxRounds, `a bounded pass: ${claims} claims`);
    const before = claims;
    await dispatch();
    assert.ok(claims - before <= COORDINATOR_DEFAULTS.dispatchMaxRounds, 'and the next one too');
  });
});
