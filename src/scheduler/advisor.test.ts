import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { advise, arrivalRates, type AdviceInput } from './advisor.ts';

const MIN = 60_000;
const HOUR = 60 * MIN;

// A three-phase pipeline a -> b -> c, worked by hand:
//   a: 12 jobs submitted in 1 h -> 12/h; mean 10 min; 2 slots -> capacity 2 x 60/10 = 12/h, utilisation 1.
//   b: every a job feeds one b job (12 children of 12 a jobs) -> 12/h; mean 20 min; 1 slot -> 3/h, utilisation 4.
//   c: half the b jobs feed a c job (6 of 12) -> 6/h; mean 5 min; 2 slots -> 24/h, utilisation 0.25.
//   Little's law: a 12 x 10/60 = 2 slots, b 12 x 20/60 = 4, c 6 x 5/60 = 0.5 -> 1; short: a 0, b 3, c 0.
//   Bottleneck b, headroom 1/4. Kinds: X {a: 2, b: 1} (one worker), Y {c: 1} (two).
//   One more X: a 4 slots (0.5), b 2 slots (utilisation 2) -> headroom 0.5; one more Y changes nothing: 0.25.
//   Plan: X until b is 4 slots (utilisation 1): 3 more X, headroom 1.
const pipeline: AdviceInput = {
  phases: [
    { queue: 'a', runTimeMeanMs: 10 * MIN, submitted: 12, arrivalsSpanMs: HOUR },
    { queue: 'b', runTimeMeanMs: 20 * MIN, submitted: 0, arrivalsSpanMs: HOUR },
    { queue: 'c', runTimeMeanMs: 5 * MIN, submitted: 6, arrivalsSpanMs: HOUR },
  ],
  edges: [
    { from: 'a', to: 'b', children: 12, fromJobs: 12 },
    { from: 'b', to: 'c', children: 6, fromJobs: 12 },
  ],
  workers: [
    { name: 'x-1', queues: { a: 2, b: 1 } },
    { name: 'y-1', queues: { c: 1 } },
    { name: 'y-2', queues: { c: 1 } },
  ],
  addWorkersMax: 100,
};

describe('advise', () => {
  it('works out capacity, arrivals, utilisation and slots per phase', () => {
    const out = advise(pipeline);
    const by = new Map(out.phases.map((p) => [p.queue, p]));
    assert.deepEqual(
      ['a', 'b', 'c'].map((q) => {
        const p = by.get(q)!;
        return [p.slots, p.capacityPerHour, p.arrivalPerHour, p.utilisation, p.slotsNeeded, p.slotsToBalance, p.slotsShort, p.status];
      }),
      [
        [2, 12, 12, 1, 2, 2, 0, 'keeping-up'],
        [1, 3, 12, 4, 4, 4, 3, 'overloaded'],
        [2, 24, 6, 0.25, 0.5, 1, 0, 'keeping-up'],
      ],
    );
    assert.deepEqual(by.get('b')!.fedBy, ['a']);
    assert.equal(by.get('b')!.submittedPerHour, 0);
  });

  it('names the bottleneck and the workers that raise throughput most', () => {
    const out = advise(pipeline);
    assert.equal(out.bottleneck, 'b');
    assert.equal(out.headroom, 0.25);
    assert.deepEqual(
      out.kinds.map((k) => [k.queues, k.workers, k.examples, k.headroomWithOneMore]),
      [
        [{ c: 1 }, 2, ['y-1', 'y-2'], 0.25],
        [{ a: 2, b: 1 }, 1, ['x-1'], 0.5],
      ],
    );
    assert.deepEqual(out.add, [{ queues: { a: 2, b: 1 }, workers: 3 }]);
    assert.equal(out.headroomAfterAdd, 1);
  });

  it('stops the plan at its bound', () => {
    const out = advise({ ...pipeline, addWorkersMax: 1 });
    assert.deepEqual(out.add, [{ queues: { a: 2, b: 1 }, workers: 1 }]);
    assert.equal(out.headroomAfterAdd, 0.5);
  });

  it('gives a phase with work and no slots a headroom of 0, and cannot plan without a kind that serves it', () => {
    // d: 6/h, mean 30 min, no slots: utilisation unbounded, headroom 0; no worker kind declares d.
    const out = advise({ ...pipeline, phases: [...pipeline.phases, { queue: 'd', runTimeMeanMs: 30 * MIN, submitted: 6, arrivalsSpanMs: HOUR }] });
    const d = out.phases.find((p) => p.queue === 'd')!;
    assert.deepEqual([d.status, d.utilisation, d.slotsToBalance, d.slotsShort], ['no-slots', null, 3, 3]);
    assert.equal(out.bottleneck, 'd');
    assert.equal(out.headroom, 0);
    assert.deepEqual(out.add, []);
    assert.equal(out.headroomAfterAdd, 0);
  });

  it('leaves a phase with no completed attempts unmeasured and out of the bottleneck', () => {
    const out = advise({ ...pipeline, phases: [pipeline.phases[0]!, { ...pipeline.phases[1]!, runTimeMeanMs: null }, pipeline.phases[2]!] });
    const b = out.phases.find((p) => p.queue === 'b')!;
    assert.deepEqual([b.status, b.capacityPerHour, b.utilisation, b.slotsNeeded, b.arrivalPerHour], ['unmeasured', null, null, null, 12]);
    assert.equal(out.bottleneck, 'a');
    assert.equal(out.headroom, 1);
    assert.deepEqual(out.add, []);
  });

  it('says nothing of a bottleneck when nothing arrives', () => {
    const out = advise({ ...pipeline, phases: pipeline.phases.map((p) => ({ ...p, submitted: 0 })) });
    assert.equal(out.bottleneck, null);
    assert.equal(out.headroom, null);
    assert.ok(out.phases.every((p) => p.status === 'idle'));
  });
});

describe('arrivalRates', () => {
  it('feeds a join from the larger of its parents and keeps submissions when they are more', () => {
    // p 10/h, q 4/h; j has 1 child per 2 p jobs (5/h) and 1 per q job (4/h): 5/h. k is submitted at 9/h and fed 2.5/h by j: 9/h.
    const rates = arrivalRates(
      [
        { queue: 'p', runTimeMeanMs: MIN, submitted: 10, arrivalsSpanMs: HOUR },
        { queue: 'q', runTimeMeanMs: MIN, submitted: 2, arrivalsSpanMs: HOUR / 2 },
        { queue: 'j', runTimeMeanMs: MIN, submitted: 0, arrivalsSpanMs: HOUR },
        { queue: 'k', runTimeMeanMs: MIN, submitted: 9, arrivalsSpanMs: HOUR },
      ],
      [
        { from: 'j', to: 'k', children: 1, fromJobs: 2 },
        { from: 'p', to: 'j', children: 5, fromJobs: 10 },
        { from: 'q', to: 'j', children: 4, fromJobs: 4 },
        { from: 'k', to: 'k', children: 3, fromJobs: 3 },
      ],
    );
    assert.deepEqual(Object.fromEntries(rates), { p: 10, q: 4, j: 5, k: 9 });
  });
});
