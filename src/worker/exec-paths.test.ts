// A coordinator that sends ids which are paths ("..", "../x") must not make the
// exec runner create or remove anything outside its roots: a real SDK worker
// against a fake coordinator on 127.0.0.1 (src/worker/testing.ts).
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, beforeEach, describe, it } from 'node:test';
import { systemClock, systemRandom } from '../types/clock.ts';
import { idFactory } from '../types/ids.ts';
import type { FailFrame } from '../types/protocol.ts';
import { execDirs, InvalidAssignmentError } from './exec.ts';
import { fakeAssignment, startFakeCoordinator, type FakeCoordinator } from './testing.ts';
import { Worker } from './worker.ts';

const T = { timeout: 30_000 };
const newId = idFactory(systemClock, systemRandom());

describe('exec runner: ids that are paths', () => {
  const base = mkdtempSync(join(tmpdir(), 'gaffer-paths-'));
  after(() => rmSync(base, { recursive: true, force: true }));
  let fake: FakeCoordinator;
  let worker: Worker;
  let root: string;
  let tmpRoot: string;
  let outRoot: string;
  /** Files that must survive: beside the roots, above them, and another attempt's inside tmpRoot. */
  let keep: string[];

  beforeEach(async () => {
    root = mkdtempSync(join(base, 'case-'));
    tmpRoot = join(root, 'work', 'tmp');
    outRoot = join(root, 'work', 'out');
    mkdirSync(join(tmpRoot, 'other-attempt'), { recursive: true });
    keep = [join(root, 'above.txt'), join(root, 'work', 'beside.txt'), join(tmpRoot, 'other-attempt', 'inside.txt')];
    for (const f of keep) writeFileSync(f, 'keep');
    fake = await startFakeCoordinator();
    worker = new Worker({
      urls: fake.url,
      name: 'paths',
      handleSignals: false,
      queues: { q: { slots: 4, exec: { command: ['sh', '-c', 'touch "$GAFFER_OUT_DIR/ran" "$GAFFER_TMP_DIR/scratch"'], tmpRoot, outRoot } } },
    });
    await worker.start();
  });

  afterEach(async () => {
    await worker.stop();
    await fake.close();
  });

  const failOf = (attemptId: string): Promise<FailFrame> => fake.next<FailFrame>((f) => f.type === 'fail' && f.attemptId === attemptId);

  for (const bad of [
    { name: 'attemptId ".."', attemptId: '..', jobId: newId() },
    { name: 'attemptId "../x"', attemptId: '../x', jobId: newId() },
    { name: 'jobId "../.."', attemptId: newId(), jobId: '../..' },
    { name: 'jobId "/etc"', attemptId: newId(), jobId: '/etc' },
  ]) {
    it(`refuses ${bad.name}: reports INVALID_ASSIGNMENT, runs nothing, removes nothing`, T, async () => {
      const before = readdirSync(root, { recursive: true }).sort();
      fake.send({ type: 'assign', assignments: [fakeAssignment({ queue: 'q', attemptId: bad.attemptId, jobId: bad.jobId })] });
      const fail = await failOf(bad.attemptId);
      assert.equal(fail.error.code, 'INVALID_ASSIGNMENT');
      assert.match(fail.error.message, /not an id the coordinator issues/);
      assert.equal(fail.retryable, true, 'the attempt is refused, not the job');
      for (const f of keep) assert.ok(existsSync(f), `${f} survives`);
      assert.deepEqual(readdirSync(root, { recursive: true }).sort(), before, 'nothing created or removed under the roots');
      assert.equal(fake.frames.some((f) => f.type === 'complete'), false);
    });
  }

  it('runs an assignment with issued ids in a fresh temp dir of its own, and removes only that', T, async () => {
    const attemptId = newId();
    const jobId = newId();
    fake.send({ type: 'assign', assignments: [fakeAssignment({ queue: 'q', attemptId, jobId })] });
    await fake.next((f) => f.type === 'complete' && f.attemptId === attemptId);
    assert.ok(existsSync(join(outRoot, jobId, attemptId, 'ran')), 'the output dir is kept');
    assert.deepEqual(readdirSync(tmpRoot), ['other-attempt'], 'its temp dir is gone, the other attempt\'s is not');
    for (const f of keep) assert.ok(existsSync(f), `${f} survives`);
  });

  it('execDirs refuses such ids before creating anything', T, async () => {
    const fresh = join(root, 'fresh');
    await assert.rejects(execDirs({ tmpRoot: join(fresh, 'tmp'), outRoot: join(fresh, 'out') }, { attemptId: '..', jobId: newId() }), InvalidAssignmentError);
    assert.equal(existsSync(fresh), false);
  });
});
