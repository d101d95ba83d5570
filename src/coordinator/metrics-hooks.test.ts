// MetricsHooks on their own, in virtual time: what each hook counts, under which queue.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Change, SubmitResult } from '../store/store.ts';
import { VirtualClock } from '../types/clock.ts';
import type { Assignment, Job } from '../types/model.ts';
import { MetricsHooks, type JobEventName, type MetricsSink } from './metrics-hooks.ts';

function recorder(): { sink: MetricsSink; counts: Map<string, number>; waits: number[]; runs: number[] } {
  const counts = new Map<string, number>();
  const waits: number[] = [];
  const runs: number[] = [];
  const sink: MetricsSink = {
    jobs: (event: JobEventName, queue: string) => counts.set(`${event} ${queue}`, (counts.get(`${event} ${queue}`) ?? 0) + 1),
    waited: (_q, ms) => waits.push(ms),
    ran: (_q, ms) => runs.push(ms),
    storeCall: () => undefined,
  };
  return { sink, counts, waits, runs };
}

const job = (id: string, queue: string, state: Job['state'], runAt: number): Job => ({ id, queue, state, runAt }) as Job;
const submitted = (j: Job): SubmitResult => ({ job: j, created: true }) as SubmitResult;
const assignment = (attemptId: string, jobId: string, queue: string, readyAt?: number): Assignment =>
  ({ attemptId, jobId, queue, workerId: 'w', ...(readyAt !== undefined ? { readyAt } : {}) }) as Assignment;
const change = (jobId: string, state: Change['state']): Change => ({ jobId, state, cancelledAttempts: [] });

describe('MetricsHooks', () => {
  it('counts a failure retried after backoff, its wait and run times, and its success', () => {
    const clock = new VirtualClock(1_000);
    const hooks = new MetricsHooks(clock);
    const r = recorder();
    hooks.attach(r.sink);
    hooks.submitted([submitted(job('j1', 'q', 'queued', 1_000))]);
    clock.advance(50);
    hooks.assigned([assignment('a1', 'j1', 'q', 1_000)]);
    clock.advance(200);
    hooks.reported('a1');
    hooks.changed([change('j1', 'queued')], 'job failed', job('j1', 'q', 'queued', 1_300));
    clock.advance(100);
    hooks.assigned([assignment('a2', 'j1', 'q')]);
    clock.advance(30);
    hooks.reported('a2');
    hooks.changed([change('j1', 'succeeded'), change('child', 'queued')], 'settled by another attempt', job('j1', 'q', 'succeeded', 1_300));
    assert.deepEqual(Object.fromEntries(r.counts), { 'submitted q': 1, 'retried q': 1, 'succeeded q': 1 }, 'a child made ready is no retry');
    assert.deepEqual(r.waits, [50, 50]);
    assert.deepEqual(r.runs, [200, 30]);
  });

  it('counts lost leases and timeouts under the queue of the attempt, and unknown jobs under ""', () => {
    const clock = new VirtualClock(0);
    const hooks = new MetricsHooks(clock);
    const r = recorder();
    hooks.attach(r.sink);
    hooks.assigned([assignment('a1', 'j1', 'gpu', 0), assignment('a2', 'j2', 'cpu', 0)]);
    hooks.swept({
      endedAttempts: [
        { attemptId: 'a1', workerId: 'w', reason: 'LEASE_LOST' },
        { attemptId: 'a2', workerId: 'w', reason: 'TIMEOUT' },
      ],
      changes: [change('j1', 'queued'), change('j2', 'failed'), change('elsewhere', 'expired')],
    });
    hooks.changed([change('j1', 'queued'), change('j2', 'failed'), change('elsewhere', 'expired')], 'swept');
    assert.deepEqual(Object.fromEntries(r.counts), { 'lost gpu': 1, 'timed_out cpu': 1, 'retried gpu': 1, 'failed cpu': 1, 'expired ': 1 });
  });

  it('does nothing without a sink', () => {
    const hooks = new MetricsHooks(new VirtualClock(0));
    hooks.submitted([submitted(job('j1', 'q', 'queued', 0))]);
    hooks.assigned([assignment('a1', 'j1', 'q', 0)]);
    const r = recorder();
    hooks.attach(r.sink);
    hooks.reported('a1');
    assert.deepEqual(r.runs, [], 'nothing was tracked before the sink');
  });
});
