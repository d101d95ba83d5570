// Trace verification with real processes: five exec workers compute, one
// sleeps instead and prints the same answer. A result vote cannot tell them
// apart; their resource traces (sampled from /proc) can, and the sleeper's
// results are rejected. Five replicas: with n replicas and one faker, the
// centres of the two score clusters are (n - 2) / n of the faker's relative
// difference apart (docs/trust.md), so five separate far better than three.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { startTestCoordinator, TEST_TOKEN, type TestCoordinator } from '../server/testing.ts';
import { Worker } from './worker.ts';

/** Burns about 400 ms of CPU time (however loaded the machine), then answers. */
const COMPUTE = `let x = 0; for (;;) { for (let i = 0; i < 100000; i++) x = (x * 31 + i) % 1000003;
  const u = process.cpuUsage(); if (u.user + u.system >= 400000) break; }
process.stdout.write(JSON.stringify({ answer: 42 }));`;
/** Does no work: sleeps about as long, then prints the same answer. */
const SLEEP = `setTimeout(() => process.stdout.write(JSON.stringify({ answer: 42 })), 500);`;

const T = { timeout: 120_000, skip: process.platform !== 'linux' && 'needs Linux /proc' };

describe('trace verification with real processes', () => {
  let tc: TestCoordinator;
  const workers: Worker[] = [];

  beforeEach(async () => {
    tc = await startTestCoordinator();
  });

  afterEach(async () => {
    await Promise.all(workers.splice(0).map((w) => w.stop()));
    await tc.close();
  });

  async function execWorker(id: string, script: string): Promise<void> {
    const w = new Worker({
      urls: [tc.url],
      token: TEST_TOKEN,
      id,
      name: id,
      handleSignals: false,
      queues: { work: { slots: 1, exec: { command: [process.execPath, '-e', script] } } },
    });
    workers.push(w);
    await w.start();
  }

  it('rejects the results of a worker that sleeps instead of computing', T, async () => {
    const honest = ['honest-1', 'honest-2', 'honest-3', 'honest-4', 'honest-5'];
    for (const id of honest) await execWorker(id, COMPUTE);
    await execWorker('sleeper', SLEEP);
    const spec = { queue: 'work', replicas: 5, quorum: 3, verify: { mode: 'trace', tolerance: 0.2 }, maxAttempts: 5 };
    const submitted = await tc.coordinator.submitMany(Array.from({ length: 6 }, (_, i) => ({ ...spec, payload: i })));
    for (const { job } of submitted) {
      const done = await tc.waitForJob(job.id, 60_000);
      assert.equal(done.state, 'succeeded', JSON.stringify(done.error));
      assert.deepEqual(done.result, { answer: 42 });
    }
    let sleeperResults = 0;
    for (const { job } of submitted) {
      for (const a of await tc.store.listAttempts({ jobId: job.id })) {
        if (a.state !== 'completed' && a.state !== 'rejected') continue;
        assert.ok(a.trace && a.trace.samples.length > 0, `attempt ${a.id} carries a trace`);
        if (a.workerId === 'sleeper') {
          sleeperResults++;
          assert.equal(a.state, 'rejected', `the sleeper's result in job ${job.id} is rejected`);
        } else {
          assert.equal(a.state, 'completed', `${a.workerId}'s result in job ${job.id} is accepted`);
        }
      }
    }
    assert.ok(sleeperResults > 0, 'the sleeper took part');
    const sleeper = await tc.store.getWorker({ id: 'sleeper' });
    assert.equal(sleeper?.reputation.invalid, sleeperResults);
    for (const id of honest) {
      assert.equal((await tc.store.getWorker({ id }))?.reputation.invalid, 0, `${id} is never judged invalid`);
    }
  });
});
