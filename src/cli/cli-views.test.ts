// What the CLI shows a person, through the real `gaffer` command against a
// real coordinator on 127.0.0.1: jobs under a header ("no jobs" when there are
// none), a job's attempts with worker names and why each ended (an outvoted
// replica's reason), the jobs one worker took part in, workers with the host
// and pid they reported, and one screen of `gaffer watch`.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { Worker } from '../worker/index.ts';
import { exitWithin, gaffer, BOUNDS } from './testing.ts';
import { serve, type Served } from './serve.ts';

const T = { timeout: 60_000 };

describe('the CLI tells the story', () => {
  let dir: string;
  let served: Served;
  const workers: Worker[] = [];

  /** Runs `gaffer ARGS` against the coordinator; its stdout, after it exited 0. */
  async function cli(...args: string[]): Promise<string> {
    const p = gaffer(`gaffer ${args[0]}`, [...args, '--url', served.server.url]);
    const exit = await exitWithin(p, BOUNDS.startMs);
    assert.equal(exit.code, 0, `gaffer ${args.join(' ')} exited ${exit.code}: ${p.stderr()}`);
    return p.stdout();
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gaffer-cli-views-'));
    const config = { host: '127.0.0.1', port: 0, db: join(dir, 'gaffer.db'), sqliteSync: 'normal' as const, tokens: [], queues: {} };
    served = await serve(config, pino({ level: 'silent' }));
    // Two agree, one answers something else: the vote rejects it, and says why.
    for (const [name, answer] of [['honest-1', 'right'], ['honest-2', 'right'], ['liar', 'wrong']] as const) {
      const w = new Worker({ urls: served.server.url, name, queues: { vote: { slots: 1, handler: () => answer } }, handleSignals: false });
      workers.push(w);
      await w.start();
    }
  });

  after(async () => {
    await Promise.all(workers.map((w) => w.stop('test over')));
    await served.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('says "no jobs" for an empty list', T, async () => {
    assert.equal((await cli('jobs')).trim(), 'no jobs');
  });

  it('lists workers with the host and pid they reported', T, async () => {
    const out = (await cli('workers')).split('\n');
    assert.match(out[0]!, /^ID +NAME +OPERATOR +HOST +PID +STATE/);
    const liar = out.find((l) => l.includes(' liar '))!;
    assert.ok(liar.includes(` ${hostname()} `) && liar.includes(` ${process.pid} `), liar);
  });

  it('shows a job\'s attempts, the outvoted one with its reason, and the jobs of one worker', T, async () => {
    const { job } = await served.coordinator.submit({ queue: 'vote', replicas: 3, quorum: 2, margin: 1, distinct: 'worker' });
    const done = await served.coordinator.waitForJob(job.id, 30_000);
    assert.equal(done.state, 'succeeded');

    const detail = await cli('job', job.id);
    assert.match(detail, /^state +succeeded$/m);
    const table = detail.slice(detail.indexOf('ATTEMPT'));
    assert.match(table.split('\n')[0]!, /^ATTEMPT +WORKER +STATE +LEASED +TOOK +WHY$/);
    assert.match(table, /liar +rejected .* OUTVOTED: its result differs from the accepted one, which 2 of 3 results agreed on/);
    assert.match(table, /honest-1 +completed /);

    const jobs = (await cli('jobs', '--worker', 'liar')).split('\n');
    assert.match(jobs[0]!, /^ID +QUEUE +STATE +PRIORITY +ATTEMPTS +KIND +CREATED$/);
    assert.match(jobs[1]!, new RegExp(`^${job.id} +vote +succeeded +0 +3 +- `));

    const p = gaffer('gaffer jobs', ['jobs', '--worker', 'nobody', '--url', served.server.url]);
    assert.notEqual((await exitWithin(p, BOUNDS.startMs)).code, 0);
    assert.match(p.stderr(), /no worker is named or has the id nobody/);
  });

  it('draws one screen of gaffer watch: queues, workers and recent events', T, async () => {
    const out = await cli('watch', '--count', '1');
    assert.match(out, /^gaffer watch · http:\/\/127\.0\.0\.1:\d+ · /);
    assert.match(out, /^QUEUE +WAITING/m);
    assert.match(out, /^vote /m);
    assert.match(out, /^WORKER +STATE +SLOTS$/m);
    assert.match(out, /^liar +idle +vote 0\/1$/m);
    assert.match(out, /^RECENT EVENTS$/m);
  });
});
