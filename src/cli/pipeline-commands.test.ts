// gaffer pipeline submit / show / list / templates against a real HTTP server
// on a real SQLite file, with a template from the config.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import type { FastifyInstance } from 'fastify';
import { Coordinator } from '../coordinator/coordinator.ts';
import { checkTemplate } from '../coordinator/pipelines.ts';
import { Auth } from '../server/auth.ts';
import { buildHttpApp } from '../server/http.ts';
import { openSqliteStore, type SqliteStore } from '../store/sqlite/store.ts';
import { systemClock, systemRandom } from '../types/clock.ts';
import { BOUNDS, exitWithin, gaffer, tails } from './testing.ts';

const TOKEN = 'pipeline-cli-secret';

describe('gaffer pipeline', () => {
  let dir: string;
  let store: SqliteStore;
  let coordinator: Coordinator;
  let app: FastifyInstance;
  let url: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gaffer-pipeline-cli-'));
    store = openSqliteStore({ path: join(dir, 'gaffer.db'), clock: systemClock, random: systemRandom() });
    const template = checkTemplate({ onFailure: 'cancel', phases: [{ name: 'pc1', queue: 'seal.pc1' }, { name: 'pc2', queue: 'seal.pc2', after: ['pc1'], count: 2, affinity: 'parent' }] }, 'sealing');
    coordinator = new Coordinator({ store, clock: systemClock, pipelines: { sealing: template } });
    coordinator.start();
    app = await buildHttpApp({ coordinator, auth: new Auth([{ token: TOKEN, scopes: ['client'] }]), logger: pino({ level: 'silent' }) });
    await app.listen({ port: 0, host: '127.0.0.1' });
    url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  });

  after(async () => {
    await app.close();
    await coordinator.stop();
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

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
