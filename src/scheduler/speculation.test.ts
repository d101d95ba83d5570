import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backupCap, decideBackups, medianOf, progressFraction, projectedFinish, type SpeculationInput } from './speculation.ts';

const ON = { enabled: true, quantile: 0.75, multiplier: 1.5 };
const base = (over: Partial<SpeculationInput> = {}): SpeculationInput => ({
  now: 100_000,
  settings: () => ON,
  queues: [{ queue: 'q', runTimesMs: [8_000, 10_000, 10_000, 12_000], recentJobs: 5, recentFinished: 4 }],
  attempts: [],
  liveAttempts: 10,
  backups: 0,
  shareMax: 0.1,
  backupsMin: 1,
  minRunMs: 1_000,
  runsMin: 3,
  ...over,
});
const attempt = (id: string, leasedAt: number, over: { progress?: number | null; deadline?: number | null } = {}) => ({
  attemptId: id,
  jobId: `job-${id}`,
  queue: 'q',
  leasedAt,
  progress: over.progress ?? null,
  deadline: over.deadline ?? null,
});

describe('speculation: decideBackups', () => {
  it('backs up an attempt past multiplier x the median once the quantile of recent jobs finished (Spark)', () => {
    assert.deepEqual(decideBackups(base({ attempts: [attempt('a', 100_000 - 15_001), attempt('b', 100_000 - 14_000)] })), [
      { attemptId: 'a', jobId: 'job-a', reason: 'slow' },
    ]);
    const early = base({ attempts: [attempt('a', 0)], queues: [{ queue: 'q', runTimesMs: [10_000, 10_000, 10_000], recentJobs: 10, recentFinished: 3 }] });
    assert.deepEqual(decideBackups(early), [], '3 of 10 recent jobs finished, fewer than 0.75 of them');
    assert.deepEqual(decideBackups(base({ attempts: [attempt('a', 0)], settings: () => ({ ...ON, enabled: false }) })), []);
    assert.deepEqual(decideBackups(base({ attempts: [attempt('a', 0)], runsMin: 5 })), [], 'too few measured runs');
  });

  it('backs up a late attempt before a slow one, while a backup can still finish by the due time', () => {
    // Due at deadline + the 10 s median; a tenth done after 5 s projects 50 s.
    const late = attempt('late', 95_000, { progress: 0.1, deadline: 100_000 });
    const slow = attempt('slow', 0);
    assert.deepEqual(decideBackups(base({ attempts: [slow, late], liveAttempts: 30 })).map((d) => [d.attemptId, d.reason]), [['late', 'deadline'], ['slow', 'slow']]);
    const tooLate = attempt('x', 95_000, { progress: 0.1, deadline: 90_000 });
    assert.deepEqual(decideBackups(base({ attempts: [tooLate] })), [], 'a backup started now would miss the due time too');
  });

  it('keeps within max(backupsMin, shareMax of the live attempts), counting the backups there are', () => {
    const many = Array.from({ length: 30 }, (_, i) => attempt(`a${i}`, i));
    assert.equal(decideBackups(base({ attempts: many, liveAttempts: 30 })).length, 3);
    assert.equal(decideBackups(base({ attempts: many, liveAttempts: 30, backups: 2 })).length, 1);
    assert.equal(decideBackups(base({ attempts: many, liveAttempts: 5, backupsMin: 2 })).length, 2);
    assert.equal(backupCap(0, 0.1, 1), 1);
  });
});

describe('speculation: estimates', () => {
  it('projects a finish from progress, else from the runs that lasted as long', () => {
    const runs = [8_000, 10_000, 12_000, 30_000];
    assert.equal(projectedFinish({ leasedAt: 0, progress: 0.5 }, 6_000, runs), 12_000);
    assert.equal(projectedFinish({ leasedAt: 0, progress: null }, 11_000, runs), 12_000, 'the median of the runs of 11 s or more');
    assert.equal(projectedFinish({ leasedAt: 0, progress: null }, 31_000, runs), Infinity);
    assert.equal(projectedFinish({ leasedAt: 0, progress: 0 }, 9_000, runs), Infinity, 'no progress after the quickest run: stuck');
    assert.equal(medianOf([1, 2, 3, 4]), 2);
  });

  it('reads a fraction from a number or a { fraction } object, nothing else', () => {
    assert.deepEqual([progressFraction(0.25), progressFraction({ fraction: 1 }), progressFraction({ round: 3, of: 4 }), progressFraction(2), progressFraction('half')], [0.25, 1, null, null, null]);
  });
});
