// A greedy worker over a real socket: it declares 1,024 slots, takes what it
// is given and never heartbeats an attempt (it says it is alive, naming none,
// so it is not taken for gone: the worst case). Slow start gives it few attempts, each loss
// halves them, it is quarantined past the lost-work bound, and no job fails
// because of it: an honest in-process worker finishes them all.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { LocalWorker } from '../coordinator/local-worker.ts';
import { systemClock } from '../types/clock.ts';
import { TRUST_DEFAULTS } from '../types/limits.ts';
import { RawClient, startTestCoordinator, TEST_TOKEN, type TestCoordinator } from './testing.ts';

const JOBS = 300;

describe('a greedy worker that never heartbeats', () => {
  let tc: TestCoordinator;
  let greedy: RawClient;
  let honest: LocalWorker | undefined;
  let alive: NodeJS.Timeout | undefined;

  beforeEach(async () => {
    tc = await startTestCoordinator({ sweepIntervalMs: 20 });
  });

  afterEach(async () => {
    clearInterval(alive);
    greedy?.ws.terminate();
    await honest?.stop();
    await tc.close();
  });

  it('is throttled, then quarantined, and fails no job', { timeout: 60_000 }, async () => {
    greedy = new RawClient(tc.url, TEST_TOKEN);
    const welcome = await greedy.hello({ name: 'greedy', queues: { work: 1024 } });
    const ids: string[] = [];
    for (let i = 0; i < JOBS; i++) ids.push((await tc.coordinator.submit({ queue: 'work', payload: i, heartbeatTimeoutMs: 200, maxAttempts: 1 })).job.id);
    await greedy.next('assign');
    alive = setInterval(() => greedy.send({ type: 'heartbeat', attempts: [] }), 50);

    const quarantined = async (): Promise<boolean> => (await tc.store.getWorker({ id: welcome.workerId }))?.quarantined === true;
    for (let i = 0; i < 600 && !(await quarantined()); i++) await new Promise((r) => setTimeout(r, 50));
    const w = await tc.store.getWorker({ id: welcome.workerId });
    assert.equal(w?.quarantined, true, JSON.stringify(w?.reputation));
    assert.match(w?.quarantineReason ?? '', /attempts lost or timed out/);
    assert.ok(w!.reputation.timedOut >= TRUST_DEFAULTS.quarantineLostMin && w!.reputation.timedOut < 20, `lost ${w!.reputation.timedOut}`);

    honest = new LocalWorker({
      coordinator: tc.coordinator,
      clock: systemClock,
      spec: { name: 'honest', labels: {}, cores: 8, memoryMb: 8192, gpuIds: [], keys: [] },
      handlers: { work: { slots: 8, handler: (payload) => ({ done: payload }) } },
      heartbeatIntervalMs: 50,
    });
    await honest.start();
    let toGreedy = 0;
    for (const id of ids) {
      const job = await tc.waitForJob(id, 30_000);
      assert.equal(job.state, 'succeeded', `job ${id}: ${JSON.stringify(job.error)}`);
      assert.equal(job.failures, 0);
      toGreedy += (await tc.store.listAttempts({ jobId: id })).filter((a) => a.workerId === welcome.workerId).length;
    }
    // Slow start: four at first, of 1,024 declared, then fewer with each loss: a handful in all, not hundreds.
    assert.ok(toGreedy <= 2 * TRUST_DEFAULTS.quarantineLostMin, `the greedy worker was given ${toGreedy} attempts`);
  });
});
