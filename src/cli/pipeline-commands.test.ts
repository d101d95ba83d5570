// gaffer pipeline submit / show / list / templates against a real HTTP server
// on a real SQLite file, with a template from the config.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { checkTemplate } from '../coordinator/pipelines.ts';
import { BOUNDS, exitWithin, gaffer, startHttpCoordinator, tails, type HttpCoordinator } from './testing.ts';

const TOKEN = 'pipeline-cli-secret';

describe('gaffer pipeline', () => {
  let http: HttpCoordinator;
  let url: string;
  let store: HttpCoordinator['store'];

  before(async () => {
    const template = checkTemplate({ onFailure: 'cancel', phases: [{ name: 'pc1', queue: 'seal.pc1' }, { name: 'pc2', queue: 'seal.pc2', after: ['pc1'], count: 2, affinity: 'parent' }] }, 'sealing');
    http = await startHttpCoordinator([{ token: TOKEN, scopes: ['client'] }], { pipelines: { sealing: template } });
    ({ url, store } = http);
  });

  after(() => http.close());

  const run = async (args: string[], code = 0): Promise<string> => {
    const p = gaffer(args.join(' '), [...args, '--url', url, '--token', TOKEN]);
    const exit = await exitWithin(p, BOUNDS.startMs);
    assert.equal(exit.code, code, tails(p));
    return code === 0 ? p.stdout() : p.stderr();
  };

  it('submits an instance by key, shows it, lists it, and names the templates', async () => {
    const made = await run(['pipeline', 'submit', 'sealing', '--payload', '{"sector":"s-7"}', '--key', 's-7', '--locality', 'bay-3']);
    const id = /^created (\S+)$/m.exec(made)?.[1];
    assert.ok(id, made);
    assert.match(made, /^locality +bay-3$/m);
    assert.match(made, /^ {2}pc1 +seal\.pc1 +queued +\S+ queued$/m);
    assert.match(made, /^ {2}pc2 +seal\.pc2 +waiting +#0 waiting, #1 waiting$/m);
    assert.match(await run(['pipeline', 'submit', 'sealing', '--key', 's-7']), new RegExp(`^exists ${id}$`, 'm'));
    assert.equal((await store.listJobs({ limit: 10 })).jobs.length, 3, 'the repeated key made no jobs');
    assert.match(await run(['pipeline', 'show', id]), /^state +running$/m);
    assert.match(await run(['pipeline', 'list', '--template', 'sealing', '--state', 'running']), new RegExp(`^${id} +sealing +running .* s-7$`, 'm'));
    assert.equal(await run(['pipeline', 'list', '--state', 'failed']), 'no pipeline instances\n');
    assert.equal(await run(['pipeline', 'templates']), 'sealing (onFailure cancel): pc1 -> pc2x2\n');
    assert.match(await run(['pipeline', 'submit', 'nope'], 1), /UNKNOWN_TEMPLATE: no pipeline template is named "nope" \(the config names sealing\)/);
  });
});
