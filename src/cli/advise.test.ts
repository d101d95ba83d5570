import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { advise } from '../scheduler/advisor.ts';
import { adviceTable } from './advise.ts';

const MIN = 60_000;
const HOUR = 60 * MIN;

describe('gaffer advise', () => {
  it('prints a line per phase, the bottleneck and the workers to add', () => {
    // seal.ap 6/h on 1 slot of 10 min (utilisation 1); seal.pc1 fed 6/h on 2 slots of 30 min (1.5): headroom 2/3,
    // one more sealer gives pc1 4 slots (0.75): headroom 4/3.
    const advice = advise({
      phases: [
        { queue: 'seal.ap', runTimeMeanMs: 10 * MIN, submitted: 6, arrivalsSpanMs: HOUR },
        { queue: 'seal.pc1', runTimeMeanMs: 30 * MIN, submitted: 0, arrivalsSpanMs: HOUR },
      ],
      edges: [{ from: 'seal.ap', to: 'seal.pc1', children: 6, fromJobs: 6 }],
      workers: [{ name: 'sealer-1', queues: { 'seal.ap': 1, 'seal.pc1': 2 } }],
      addWorkersMax: 10,
    });
    const text = adviceTable({ ...advice, at: 0, windowMs: HOUR, workersCounted: 1, edges: [], edgesTruncated: false });
    assert.equal(
      text,
      [
        'QUEUE     STATUS       MEAN  SLOTS  NEEDED  BALANCE  SHORT  CAP/H  IN/H  UTIL  FED BY',
        'seal.ap   keeping-up  10.0m      1       1        1      0      6     6     1  -',
        'seal.pc1  overloaded  30.0m      2       3        3      1      4     6   1.5  seal.ap',
        '',
        'bottleneck seal.pc1: headroom 0.67 (every arrival rate may grow by this factor before it falls behind)',
        'add 1 x {seal.ap 1, seal.pc1 2} (like sealer-1)',
        'headroom after adding: 1.33',
        'over the last 1.0h; workers counted: 1',
      ].join('\n'),
    );
  });
});
