// gaffer queue pause / resume (of a queue, and of a queue on one worker),
// gaffer jobs --filler, and gaffer history against a real HTTP server
// on a real SQLite file.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { normalizeWorker } from '../coordinator/validate.ts';
import { BOUNDS, exitWithin, gaffer, startHttpCoordinator, tails, type HttpCoordinator } from './testing.ts';

const ADMIN = 'admin-secret';

describe('gaffer queue and gaffer history', () => {
  let http: HttpCoordinator;
  let url: string;
  let store: HttpCoordinator['store'];
  let coordinator: HttpCoordinator['coordinator'];

  before(async () => {
    http = await startHttpCoordinator([{ token: ADMIN, scopes: ['client', 'admin'] }], { queues: { cc: { backlog: { target: 2, job: { payload: 'cc' } } } } });
    ({ url, store, coordinator } = http);
  });

  after(() => http.close());

  const run = async (args: string[]): Promise<string> => {
    const p = gaffer(args.join(' '), [...args, '--url', url, '--token', ADMIN]);
    const exit = await exitWithin(p, BOUNDS.startMs);
    assert.equal(exit.code, 0, tails(p));
    return p.stdout();
  };

  it('pauses and resumes a queue, and prints the history', async () => {
    assert.match(await run(['queue', 'pause', 'render', '--reason', 'driver upgrade']), /^render paused since .*: driver upgrade\n$/);
    const render = async () => (await store.listQueueStates()).find((q) => q.queue === 'render');
    assert.equal((await render())?.paused, true);
    assert.equal(await run(['queue', 'resume', 'render']), 'render resumed\n');
    assert.equal((await render())?.paused, false);
    await coordinator.submit({ queue: 'render', payload: 1 });
    await coordinator.history.flush();
    const table = await run(['history', '--queue', 'render']);
    assert.match(table, /^AT\s+QUEUE\s+SUBMITTED/);
    assert.match(table, /render\s+1\s+0\s+0\s+0\s+0\s+0\s+-\s+-/);
  });

  it('pauses and resumes a queue on one worker, and lists the filler jobs of a backlog', async () => {
    const w = await store.upsertWorker({ spec: normalizeWorker({ id: 'box-1', name: 'box-1', queues: { render: 1 } }) });
    assert.equal(await run(['queue', 'pause', 'render', '--worker', w.id]), 'box-1: paused render\n');
    assert.deepEqual((await store.getWorker({ id: w.id }))?.pausedQueues, ['render']);
    assert.match(await run(['workers']), /render 0\/1 paused/);
    assert.equal(await run(['queue', 'resume', 'render', '--worker', w.id]), 'box-1: no queue paused\n');
    assert.deepEqual((await store.getWorker({ id: w.id }))?.pausedQueues, []);
    await coordinator.topUpBacklogs();
    const [header, ...fillers] = (await run(['jobs', '--queue', 'cc', '--filler'])).trim().split('\n');
    assert.match(header!, /^ID +QUEUE +STATE +PRIORITY +ATTEMPTS +KIND +CREATED$/);
    assert.equal(fillers.length, 2);
    for (const line of fillers) assert.match(line, /\bcc +queued .* filler +\d{4}-/);
    assert.equal((await run(['jobs', '--queue', 'cc', '--no-filler'])).trim(), 'no jobs');
  });
});
