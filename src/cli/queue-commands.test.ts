// gaffer queue pause / resume and gaffer history against a real HTTP server
// on a real SQLite file.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BOUNDS, exitWithin, gaffer, startHttpCoordinator, tails, type HttpCoordinator } from './testing.ts';

const ADMIN = 'admin-secret';

describe('gaffer queue and gaffer history', () => {
  let http: HttpCoordinator;
  let url: string;
  let store: HttpCoordinator['store'];
  let coordinator: HttpCoordinator['coordinator'];

  before(async () => {
    http = await startHttpCoordinator([{ token: ADMIN, scopes: ['client', 'admin'] }]);
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
    assert.equal((await store.listQueueStates())[0]?.paused, true);
    assert.equal(await run(['queue', 'resume', 'render']), 'render resumed\n');
    assert.equal((await store.listQueueStates())[0]?.paused, false);
    await coordinator.submit({ queue: 'render', payload: 1 });
    await coordinator.history.flush();
    const table = await run(['history', '--queue', 'render']);
    assert.match(table, /^AT\s+QUEUE\s+SUBMITTED/);
    assert.match(table, /render\s+1\s+0\s+0\s+0\s+0\s+0\s+-\s+-/);
  });
});
