// The exec runner with real child processes: on its own, and behind a worker
// connected to a real coordinator.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { after, afterEach, beforeEach, describe, it } from 'node:test';
import { startTestCoordinator, TEST_TOKEN, type TestCoordinator } from '../server/testing.ts';
import { systemClock, systemRandom } from '../types/clock.ts';
import { idFactory } from '../types/ids.ts';
import type { Assignment, Json } from '../types/model.ts';
import { ExecError, runExec, type ExecOptions } from './exec.ts';
import { fakeAssignment } from './testing.ts';
import { Worker, type WorkerEvents } from './worker.ts';

const T = { timeout: 30_000 };
const CHILD = new URL('./fixtures/exec-child.ts', import.meta.url).pathname;
const child = (mode: string): string[] => [process.execPath, CHILD, mode];

const roots = mkdtempSync(join(tmpdir(), 'gaffer-exec-'));
after(() => rmSync(roots, { recursive: true, force: true }));
const dirs = { tmpRoot: join(roots, 'tmp'), outRoot: join(roots, 'out') };

const newId = idFactory(systemClock, systemRandom());
function assignment(over: Partial<Assignment> = {}): Assignment {
  return fakeAssignment({ attemptId: newId(), jobId: newId(), workerId: 'W', queue: 'q', ...over });
}

function run(command: ExecOptions['command'], payload: Json, extra: Partial<ExecOptions> = {}, signal = new AbortController().signal, progress?: (v: Json) => void) {
  const a = assignment();
  const ran = runExec({ command, ...dirs, ...extra }, { assignment: a, payload, signal, ...(progress ? { progress } : {}) });
  return { a, ran, done: ran.then((o) => o.result) };
}

/** The ExecError a run rejects with; fails the test if it resolves. */
async function failure(p: Promise<Json>): Promise<ExecError> {
  try {
    const v = await p;
    return assert.fail(`expected a failure, got ${JSON.stringify(v)}`);
  } catch (err) {
    assert.ok(err instanceof ExecError, String(err));
    return err;
  }
}

describe('exec runner', () => {
  it('passes the payload on stdin and reads the result from stdout, through a shell or argv', T, async () => {
    assert.deepEqual(await run('cat', { a: [1, 2] }).done, { a: [1, 2] });
    assert.deepEqual(await run(['cat'], 'text').done, 'text');
    assert.equal(await run('true', 1).done, null, 'empty stdout is the result null');
  });

  it('sets the GAFFER_ variables, makes the directories, removes the temp one and keeps the output one', T, async () => {
    const a = assignment({ queue: 'seal.pc1', attempt: 3, gpuIds: [2, 5] });
    const ran = await runExec({ command: child('env'), ...dirs }, { assignment: a, payload: { p: 1 }, signal: new AbortController().signal });
    const out = ran.result as Record<string, Json>;
    assert.deepEqual(out, {
      payload: { p: 1 },
      jobId: a.jobId,
      attemptId: a.attemptId,
      queue: 'seal.pc1',
      attempt: '3',
      tmpDir: out.tmpDir,
      outDir: join(dirs.outRoot, a.jobId, a.attemptId),
      tmpExists: true,
      outExists: true,
      cuda: '2,5',
    });
    assert.equal(dirname(out.tmpDir as string), dirs.tmpRoot, 'the temp dir is made inside tmpRoot');
    assert.ok(basename(out.tmpDir as string).startsWith(`${a.attemptId}-`), 'named after the attempt, with a random suffix (mkdtemp)');
    assert.equal(existsSync(out.tmpDir as string), false, 'temp dir removed');
    assert.equal(existsSync(join(dirs.outRoot, a.jobId, a.attemptId)), true, 'output dir kept');
  });

  it('gives a pipeline job its phase, locality and parents\' results (in a file of its temp directory)', T, async () => {
    const parents = [{ jobId: newId(), phase: 'pc1', index: 0, result: { layers: 'L' } }];
    const a = assignment({ pipeline: { id: newId(), phase: 'pc2', index: 1, locality: 'bay-3' }, parents });
    const script = 'cat >/dev/null; printf \'{"phase":"%s","index":%s,"locality":"%s","parents":%s}\' "$GAFFER_PHASE" "$GAFFER_PHASE_INDEX" "$GAFFER_LOCALITY" "$(cat "$GAFFER_PARENTS_FILE")"';
    const ran = await runExec({ command: script, ...dirs }, { assignment: a, payload: null, signal: new AbortController().signal });
    assert.deepEqual(ran.result, { phase: 'pc2', index: 1, locality: 'bay-3', parents });
  });

  it('sets CUDA_VISIBLE_DEVICES to the empty string when the attempt has no GPU', T, async () => {
    const out = (await run(child('env'), null, { env: { CUDA_VISIBLE_DEVICES: '0,1,2,3' } }).done) as { cuda: string };
    assert.equal(out.cuda, '');
  });

  it('fails with the tail of stderr on a non-zero exit, retryable unless the exit code is 65', T, async () => {
    const err = await failure(run(child('fail'), null, { stderrTailMaxBytes: 64 }).done);
    assert.equal(err.retryable, true);
    assert.equal(err.exitCode, 3);
    assert.ok(err.stderrTail.endsWith('THE END'));
    assert.ok(Buffer.byteLength(err.stderrTail) <= 64);
    assert.match(err.message, /exited with code 3; stderr/);
    const permanent = await failure(run(child('permanent'), null).done);
    assert.deepEqual([permanent.retryable, permanent.exitCode, permanent.stderrTail], [false, 65, 'bad input']);
  });

  it('fails without retry when stdout is not JSON or is larger than its bound', T, async () => {
    const notJson = await failure(run(child('not-json'), null).done);
    assert.equal(notJson.retryable, false);
    assert.match(notJson.message, /stdout is not one JSON value/);
    const big = await failure(run('cat', 'x'.repeat(1000), { stdoutMaxBytes: 100 }).done);
    assert.equal(big.retryable, false);
    assert.match(big.message, /more than 100 bytes/);
  });

  it('fails (retryable) when the command cannot start', T, async () => {
    const err = await failure(run(['/nonexistent/gaffer-test-binary'], null).done);
    assert.equal(err.retryable, true);
    assert.match(err.message, /could not start/);
  });

  it('reads progress lines from fd 3', T, async () => {
    const seen: Json[] = [];
    assert.equal(await run(child('progress'), null, {}, undefined, (v) => seen.push(v)).done, 'done');
    assert.deepEqual(seen, [{ step: 1 }, { step: 2 }]);
  });

  it('on abort sends SIGTERM, then SIGKILL after the grace period to a child that ignores it', T, async () => {
    const abort = new AbortController();
    let pid = 0;
    let ready!: () => void;
    const isReady = new Promise<void>((r) => (ready = r));
    const seen: Json[] = [];
    const { done } = run(child('stubborn'), null, { killGraceMs: 100 }, abort.signal, (v) => {
      seen.push(v);
      const r = (v as { ready?: number }).ready;
      if (r) {
        pid = r;
        ready();
      }
    });
    await isReady;
    abort.abort(new Error('cancelled'));
    await assert.rejects(done, /cancelled/);
    assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, 'the child is gone');
    assert.deepEqual(seen.at(-1), { sigterm: true }, 'it got SIGTERM first and ignored it');
  });
});

describe('exec worker', () => {
  let tc: TestCoordinator;
  const workers: Worker[] = [];

  beforeEach(async () => {
    tc = await startTestCoordinator();
  });

  afterEach(async () => {
    await Promise.all(workers.splice(0).map((w) => w.stop()));
    await tc.close();
  });

  function execWorker(exec: ExecOptions, extra: { slots?: number; gpuIds?: number[] } = {}): Worker {
    const w = new Worker({
      urls: [tc.url],
      token: TEST_TOKEN,
      name: 'exec',
      handleSignals: false,
      ...(extra.gpuIds ? { gpuIds: extra.gpuIds } : {}),
      queues: { work: { slots: extra.slots ?? 1, exec: { ...dirs, ...exec } } },
    });
    workers.push(w);
    return w;
  }

  function next<K extends keyof WorkerEvents>(w: Worker, event: K): Promise<WorkerEvents[K]> {
    return new Promise((resolve) => w.once(event, ((...args: WorkerEvents[K]) => resolve(args)) as never));
  }

  it('pins each attempt to its own GPU: two slots, GPUs [0, 1], two jobs see one different id each', T, async () => {
    const jobs = await tc.coordinator.submitMany([
      { queue: 'work', payload: 'a', requires: { gpus: 1 } },
      { queue: 'work', payload: 'b', requires: { gpus: 1 } },
    ]);
    await execWorker({ command: child('env') }, { slots: 2, gpuIds: [0, 1] }).start();
    const seen: string[] = [];
    for (const { job } of jobs) {
      const done = await tc.waitForJob(job.id);
      assert.equal(done.state, 'succeeded', JSON.stringify(done.error));
      const cuda = (done.result as { cuda: string }).cuda;
      const [attempt] = await tc.store.listAttempts({ jobId: job.id });
      assert.equal(cuda, attempt!.gpuIds.join(','), 'exactly the ids the coordinator assigned');
      seen.push(cuda);
    }
    assert.deepEqual(seen.sort(), ['0', '1']);
  });

  it('sends the child\'s resource trace with its result (Linux)', { ...T, skip: process.platform !== 'linux' && 'needs Linux /proc' }, async () => {
    await execWorker({ command: child('burn') }).start();
    const { job } = await tc.coordinator.submit({ queue: 'work' });
    const done = await tc.waitForJob(job.id);
    assert.equal(done.state, 'succeeded', JSON.stringify(done.error));
    const [attempt] = await tc.store.listAttempts({ jobId: job.id });
    const samples = attempt!.trace?.samples ?? [];
    assert.equal(attempt!.trace?.intervalMs, 100);
    assert.ok(samples.length >= 2, `${samples.length} samples`);
    assert.ok(samples.at(-1)!.cpuMs > 100, `${samples.at(-1)!.cpuMs} ms of CPU`);
    assert.ok(samples.some((s) => s.rssKb > 0));
  });

  it('fails the job with the stderr tail when the command exits non-zero', T, async () => {
    await execWorker({ command: child('fail'), stderrTailMaxBytes: 200 }).start();
    const { job } = await tc.coordinator.submit({ queue: 'work', maxAttempts: 1 });
    const done = await tc.waitForJob(job.id);
    assert.equal(done.state, 'failed');
    assert.equal(done.error?.code, 'HANDLER_ERROR');
    assert.match(done.error?.message ?? '', /exited with code 3; stderr/);
    assert.ok(done.error?.message.endsWith('THE END'));
    assert.ok((done.error?.message.length ?? 0) < 400, 'the tail is bounded');
  });

  it('kills the child when the job is cancelled', T, async () => {
    const w = execWorker({ command: child('stubborn'), killGraceMs: 100 });
    await w.start();
    const spawned = next(w, 'spawned');
    const progressed = next(w, 'progress');
    const { job } = await tc.coordinator.submit({ queue: 'work' });
    const [{ pid }] = await spawned;
    await progressed; // the child is up and ignoring SIGTERM
    const ended = next(w, 'ended');
    await tc.coordinator.cancel(job.id);
    const [e] = await ended;
    assert.equal(e.aborted, true);
    assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, 'the child is gone');
    assert.equal((await tc.coordinator.getJob(job.id)).state, 'cancelled');
  });
});
