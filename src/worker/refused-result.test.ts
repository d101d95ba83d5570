// What the SDK worker does with a result the coordinator cannot take: a real
// worker against a fake coordinator on 127.0.0.1 (src/worker/testing.ts) that
// acks as the test chooses. A refused result is never sent again: the attempt
// is failed (no retry), and its lease is no longer named in heartbeats.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { systemClock, systemRandom } from '../types/clock.ts';
import { idFactory } from '../types/ids.ts';
import { LIMITS } from '../types/limits.ts';
import type { Json } from '../types/model.ts';
import type { FailFrame, HeartbeatFrame, WorkerFrame } from '../types/protocol.ts';
import { fakeAssignment, startFakeCoordinator, type FakeCoordinator } from './testing.ts';
import { Worker } from './worker.ts';

const T = { timeout: 30_000 };
const newId = idFactory(systemClock, systemRandom());
const deep = (levels: number): Json => JSON.parse('['.repeat(levels) + '0' + ']'.repeat(levels)) as Json;

describe('sdk worker: refused results', () => {
  let fake: FakeCoordinator;
  let worker: Worker;

  beforeEach(async () => {
    fake = await startFakeCoordinator();
    worker = new Worker({
      urls: fake.url,
      name: 'refused',
      handleSignals: false,
      heartbeatIntervalMs: 20,
      queues: { ok: { slots: 1, handler: () => ({ fine: true }) }, deep: { slots: 1, handler: () => deep(4000) } },
    });
    await worker.start();
  });

  afterEach(async () => {
    await worker.stop();
    await fake.close();
  });

  const of = (type: WorkerFrame['type'], attemptId: string) => (f: WorkerFrame): boolean => f.type === type && 'attemptId' in f && f.attemptId === attemptId;

  it('an INVALID_INPUT ack of a result fails the attempt once, without retry, and never resends the result', T, async () => {
    const attemptId = newId();
    fake.send({ type: 'assign', assignments: [fakeAssignment({ queue: 'ok', attemptId, jobId: newId() })] });
    await fake.next(of('complete', attemptId));
    fake.send({ type: 'ack', attemptId, ok: false, error: { code: 'INVALID_INPUT', message: 'result nests arrays and objects more than 128 levels deep' } });
    const fail = await fake.next<FailFrame>(of('fail', attemptId));
    assert.equal(fail.error.code, 'HANDLER_ERROR');
    assert.equal(fail.retryable, false);
    assert.match(fail.error.message, /the coordinator refused the result \(INVALID_INPUT\): result nests/);
    fake.send({ type: 'ack', attemptId, ok: true });
    // Heartbeats after the ack no longer name the attempt; by then the result has gone exactly once.
    const count = fake.frames.length;
    await fake.next<HeartbeatFrame>((f) => f.type === 'heartbeat' && fake.frames.indexOf(f) > count && f.attempts.length === 0);
    assert.equal(fake.frames.filter(of('complete', attemptId)).length, 1, 'the result was sent once');
    assert.equal(fake.frames.filter(of('fail', attemptId)).length, 1);
    assert.equal(worker.activeAttempts, 0);
    assert.equal(worker.stats.failed, 1);
  });

  it('a handler result nested past the bound is failed on the worker, never sent', T, async () => {
    const attemptId = newId();
    fake.send({ type: 'assign', assignments: [fakeAssignment({ queue: 'deep', attemptId, jobId: newId() })] });
    const fail = await fake.next<FailFrame>(of('fail', attemptId));
    assert.deepEqual([fail.error.code, fail.retryable], ['HANDLER_ERROR', false]);
    assert.match(fail.error.message, new RegExp(`more than ${LIMITS.jsonNestingMaxLevels} levels deep`));
    assert.equal(fake.frames.some(of('complete', attemptId)), false);
  });
});
