// The trust features through the `gaffer` command, as real processes on
// 127.0.0.1 with tokens on: submit's replication and verification flags
// reaching the job, a config file's [trust] section reaching the store (a
// liar is quarantined after one judged result instead of three), and the
// admin commands quarantine and release, refused to a client token.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { GafferClient } from '../client/client.ts';
import type { Job, Worker } from '../types/model.ts';
import { isGafferError } from '../types/errors.ts';
import { trustFields } from './client-commands.ts';
import { BAD_ACTOR_ENV } from './demo-bad-handlers.ts';
import { connectedWorkers, exitWithin, gaffer, stop, tails, until, type Exit, type Proc } from './testing.ts';

const HONEST = fileURLToPath(new URL('./demo-handlers.ts', import.meta.url));
const BAD = fileURLToPath(new URL('./demo-bad-handlers.ts', import.meta.url));

const TOKENS = { admin: 'tok-admin', client: 'tok-client', worker: 'tok-worker' } as const;

const CONFIG = `
[[tokens]]
name = "admin"
token = "${TOKENS.admin}"
scopes = ["admin"]

[[tokens]]
name = "client"
token = "${TOKENS.client}"
scopes = ["client"]

[[tokens]]
name = "workers"
operator = "lab-a"
token = "${TOKENS.worker}"
scopes = ["worker"]

# Defaults that a bare submit to this queue takes.
[queues."hash.checked"]
replicas = 3
quorum = 2
adaptive = true

# One judged result is enough to judge a worker (the default is 3).
[trust]
quarantineMinResults = 1
`;

let dir: string;
let procs: Proc[];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'gaffer-trust-cli-'));
  procs = [];
});

afterEach(async () => {
  const workers = procs.filter((p) => p.name.startsWith('worker'));
  await Promise.all(workers.map((p) => stop(p)));
  await Promise.all(procs.filter((p) => !workers.includes(p)).map((p) => stop(p)));
  rmSync(dir, { recursive: true, force: true });
});

const track = (p: Proc): Proc => (procs.push(p), p);

async function startServe(): Promise<string> {
  const config = join(dir, 'gaffer.toml');
  writeFileSync(config, CONFIG);
  const proc = track(gaffer('serve', ['serve', '--port', '0', '--db', join(dir, 'gaffer.db'), '--config', config, '--log-level', 'warn']));
  const m = await proc.waitLine(/^gaffer: listening on (http:\/\/127\.0\.0\.1:\d+) /);
  return m[1]!;
}

function startWorker(url: string, name: string, module: string, env: Record<string, string> = {}): Proc {
  const args = ['worker', '--url', url, '--token', TOKENS.worker, '--name', name, '--module', module, '--queue', 'hash.checked:1', '--log-level', 'warn'];
  return track(gaffer(`worker ${name}`, args, env));
}

interface Run {
  exit: Exit;
  out: string;
  err: string;
  proc: Proc;
}

async function cli(url: string, args: string[], token: string = TOKENS.admin): Promise<Run> {
  const proc = track(gaffer(`gaffer ${args[0]}`, [...args, '--url', url, '--token', token]));
  const exit = await exitWithin(proc, 30_000);
  return { exit, out: proc.stdout(), err: proc.stderr(), proc };
}

const OK: Exit = { code: 0, signal: null };
const REFUSED: Exit = { code: 1, signal: null };

describe('trust through the CLI (real processes on 127.0.0.1, tokens on)', () => {
  it('submit passes --replicas, --quorum, --verify trace --tolerance, --verify-queue and --adaptive into the job, and refuses bad combinations', { timeout: 90_000 }, async () => {
    const url = await startServe();
    const submit = async (flags: string[]): Promise<Job> => {
      const r = await cli(url, ['submit', 'nobody.serves.this', '--payload', '{"n":1}', '--json', ...flags]);
      assert.deepEqual(r.exit, OK, tails(r.proc));
      return (JSON.parse(r.out) as { job: Job }).job;
    };
    const [trace, defaultTolerance, verifier, adaptive, plain] = await Promise.all([
      submit(['--replicas', '3', '--quorum', '2', '--verify', 'trace', '--tolerance', '0.35']),
      submit(['--replicas', '4', '--verify', 'trace']),
      submit(['--verify-queue', 'nobody.checks.this']),
      submit(['--replicas', '2', '--adaptive']),
      submit([]),
    ]);
    assert.deepEqual([trace.replicas, trace.quorum, trace.verify, trace.adaptive], [3, 2, { mode: 'trace', tolerance: 0.35 }, false]);
    assert.deepEqual([defaultTolerance.replicas, defaultTolerance.quorum, defaultTolerance.verify], [4, 3, { mode: 'trace', tolerance: 0.2 }]);
    assert.deepEqual([verifier.replicas, verifier.verify], [1, { mode: 'queue', queue: 'nobody.checks.this' }]);
    assert.deepEqual([adaptive.replicas, adaptive.quorum, adaptive.adaptive], [2, 2, true]);
    assert.deepEqual([plain.replicas, plain.quorum, plain.verify, plain.adaptive], [1, 1, null, false]);
    // The queue's defaults from the config file, for a submit that gives none.
    const fromQueue = (JSON.parse((await cli(url, ['submit', 'hash.checked', '--payload', '{"seed":"q","rounds":1}', '--json'])).out) as { job: Job }).job;
    assert.deepEqual([fromQueue.replicas, fromQueue.quorum, fromQueue.adaptive], [3, 2, true]);
    await new GafferClient({ url, token: TOKENS.admin }).cancel(fromQueue.id);

    // Refused by the CLI before any request (every combination: see the unit test below), by
    // commander for a bad number, or by the coordinator, which alone knows the queue's defaults.
    const refusals: [string[], RegExp][] = [
      [['--replicas', '2', '--verify', 'trace'], /^gaffer: INVALID_INPUT: --verify trace .* needs --replicas 3 or more \(got 2\)$/m],
      [['--replicas', '0'], /option '--replicas <n>' argument '0' is invalid/],
      [['--verify', 'trace'], /^gaffer: INVALID_INPUT: job\.verify trace needs at least 3 replicas \(got 1\)/m],
    ];
    const refused = await Promise.all(refusals.map(([flags]) => cli(url, ['submit', 'nobody.serves.this', '--payload', '{}', ...flags])));
    refused.forEach((r, i) => {
      assert.deepEqual(r.exit, REFUSED, `${refusals[i]![0].join(' ')}\n${tails(r.proc)}`);
      assert.match(r.err, refusals[i]![1], refusals[i]![0].join(' '));
    });
    const jobs = await new GafferClient({ url, token: TOKENS.admin }).list({ queue: 'nobody.serves.this' });
    assert.equal(jobs.jobs.length, 5, 'no refused submit made a job');
  });

  it('quarantines a liar after one judged result under [trust], shows it in `workers`, and quarantines and releases by the admin commands only', { timeout: 90_000 }, async () => {
    const url = await startServe();
    const client = new GafferClient({ url, token: TOKENS.admin });
    startWorker(url, 'honest-1', HONEST);
    startWorker(url, 'honest-2', HONEST);
    startWorker(url, 'liar', BAD, { [BAD_ACTOR_ENV]: 'liar' });
    const [h1, , liar] = await connectedWorkers(client, ['honest-1', 'honest-2', 'liar']);

    // One job on three workers (a bare lead decides: there is no fourth to add): the two honest ones agree, the liar is outvoted. The honest work
    // takes long enough (a few hundred ms) for the liar's instant answer to be in before the vote.
    const r = await cli(url, ['submit', 'hash.checked', '--payload', '{"seed":"one","rounds":150000}', '--replicas', '3', '--quorum', '2', '--margin', '1', '--wait', '--json'], TOKENS.client);
    assert.deepEqual(r.exit, OK, tails(r.proc));
    const job = (JSON.parse(r.out) as { job: Job }).job;
    assert.equal(job.state, 'succeeded');
    const judged = await until('the liar quarantined', async () => {
      const w = (await client.workers()).find((x) => x.id === liar!.id);
      return w?.quarantined ? w : undefined;
    }, 30_000, 50);
    assert.deepEqual([judged.reputation.valid, judged.reputation.invalid, judged.state], [0, 1, 'quarantined']);
    assert.equal(judged.quarantineReason, '1 of 1 judged results invalid (more than 20%)', 'quarantineMinResults = 1 from [trust]');

    const table = await cli(url, ['workers']);
    assert.deepEqual(table.exit, OK, tails(table.proc));
    assert.match(table.out, /^ID +NAME +OPERATOR +HOST +PID +STATE +VALID +INVALID +TIMEDOUT +STREAK +SLOTS +CHECKS$/m);
    assert.match(table.out, new RegExp(`^${liar!.id} +liar +lab-a +\\S+ +\\d+ +quarantined +0 +1 +0 +0 +hash\\.checked 0/1 +-$`, 'm'), table.out);
    assert.equal(judged.operator, 'lab-a', 'the record names the operator of the token that created it');
    assert.match(table.out, /^ {4}quarantined: 1 of 1 judged results invalid \(more than 20%\)$/m);
    assert.match(table.out, new RegExp(`^${h1!.id} +honest-1 +lab-a +\\S+ +\\d+ +idle +1 +0 +0 +1 `, 'm'), table.out);

    // A client token may not quarantine or release; an admin token may.
    for (const args of [['quarantine', h1!.id], ['release', liar!.id]]) {
      const denied = await cli(url, args, TOKENS.client);
      assert.deepEqual(denied.exit, REFUSED, tails(denied.proc));
      assert.match(denied.err, /FORBIDDEN: this token lacks the admin scope/);
    }
    const q = await cli(url, ['quarantine', h1!.id, '--reason', 'disk replaced', '--json']);
    assert.deepEqual(q.exit, OK, tails(q.proc));
    const held = (JSON.parse(q.out) as { worker: Worker }).worker;
    assert.deepEqual([held.id, held.quarantined, held.quarantineReason, held.state], [h1!.id, true, 'disk replaced', 'quarantined']);

    const released = await cli(url, ['release', liar!.id]);
    assert.deepEqual(released.exit, OK, tails(released.proc));
    assert.match(released.out, new RegExp(`^${liar!.id} released \\(\\w+\\)$`, 'm'));
    const after = await client.workers();
    const fresh = after.find((w) => w.id === liar!.id)!;
    assert.equal(fresh.quarantined, false);
    assert.deepEqual([fresh.reputation.valid, fresh.reputation.invalid], [0, 0], 'released with a fresh record');
    assert.equal(after.find((w) => w.id === h1!.id)!.quarantined, true);

    const human = await cli(url, ['quarantine', liar!.id, '--reason', 'again']);
    assert.equal(human.out.trim(), `${liar!.id} quarantined: again`);
    const missing = await cli(url, ['release', 'no-such-worker']);
    assert.deepEqual(missing.exit, REFUSED);
    assert.match(missing.err, /WORKER_NOT_FOUND/);
  });
});

describe('submit flags for replication and verification', () => {
  it('turns the flags into the job fields, with tolerance 0.2 by default', () => {
    assert.deepEqual(trustFields({}), {});
    assert.deepEqual(trustFields({ replicas: 3, quorum: 2, verify: 'trace', tolerance: 0.35 }), { replicas: 3, quorum: 2, verify: { mode: 'trace', tolerance: 0.35 } });
    assert.deepEqual(trustFields({ verify: 'trace' }), { verify: { mode: 'trace', tolerance: 0.2 } }, 'replicas may come from the queue');
    assert.deepEqual(trustFields({ verifyQueue: 'q.check' }), { verify: { mode: 'queue', queue: 'q.check' } });
    assert.deepEqual(trustFields({ replicas: 1, verifyQueue: 'q.check' }), { replicas: 1, verify: { mode: 'queue', queue: 'q.check' } });
    assert.deepEqual(trustFields({ replicas: 2, adaptive: true }), { replicas: 2, adaptive: true });
    assert.deepEqual(trustFields({ quorum: 2 }), { quorum: 2 }, 'replicas may come from the queue');
  });

  it('refuses the combinations the flags alone show to be wrong', () => {
    const cases: [Parameters<typeof trustFields>[0], RegExp][] = [
      [{ replicas: 2, verify: 'trace' }, /^--verify trace .* needs --replicas 3 or more \(got 2\)$/],
      [{ replicas: 2, quorum: 3 }, /^--quorum 3 cannot exceed --replicas 2$/],
      [{ tolerance: 0.1 }, /^--tolerance goes with --verify trace$/],
      [{ verifyQueue: 'q', tolerance: 0.1 }, /^--tolerance goes with --verify trace$/],
      [{ verify: 'votes', replicas: 3 }, /^--verify takes "trace" \(got "votes"\); for a verifier queue give --verify-queue QUEUE$/],
      [{ verify: 'trace', verifyQueue: 'q', replicas: 3 }, /^give --verify trace or --verify-queue QUEUE, not both$/],
      [{ verifyQueue: 'q', replicas: 3 }, /^--verify-queue .* needs --replicas 1 \(got 3\)$/],
      [{ verifyQueue: ' ' }, /^--verify-queue takes a queue name$/],
      [{ replicas: 1, adaptive: true }, /^--adaptive .* needs --replicas 2 or more \(got 1\)$/],
    ];
    for (const [flags, message] of cases) {
      assert.throws(() => trustFields(flags), (e) => isGafferError(e, 'INVALID_INPUT') && message.test(e.message), JSON.stringify(flags));
    }
  });
});
