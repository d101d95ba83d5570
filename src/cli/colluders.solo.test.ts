// Two colluders among six workers, as real processes on 127.0.0.1: `gaffer
// serve` with one token (and operator) per worker, four honest `gaffer worker
// --exec` processes that take a moment to hash their payload, and two liars
// that answer at once with the same forged result. 150 jobs with replicas 3
// and quorum 2: no forged result is accepted, exactly the two liars are
// quarantined, and no honest worker is.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { GafferClient } from '../client/client.ts';
import type { Json } from '../types/model.ts';
import { connectedWorkers, gaffer, stop, tails, until, type Proc } from './testing.ts';

const JOBS = 150;
const NAMES = ['honest-1', 'honest-2', 'honest-3', 'honest-4', 'liar-1', 'liar-2'] as const;
const tokenOf = (name: string): string => `worker-token-${name}-0123456789`;
const ADMIN = 'admin-token-0123456789abcdef';

// The honest child hashes the payload line it reads (after a short pause: real work takes time); the liar does not read it.
const HONEST = `read -r p; sleep 0.2; printf '{"sum":"%s"}' "$(printf '%s' "$p" | sha256sum | cut -c1-16)"`;
const LIAR = `cat >/dev/null; printf '{"sum":"forged"}'`;

const config = (): string =>
  [
    `[[tokens]]\nname = "admin"\ntoken = "${ADMIN}"\nscopes = ["admin"]\n`,
    ...NAMES.map((n) => `[[tokens]]\nname = "${n}"\noperator = "op-${n}"\ntoken = "${tokenOf(n)}"\nscopes = ["worker"]\n`),
  ].join('\n');

describe('two colluders among six workers (real processes)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gaffer-colluders-'));
  const procs: Proc[] = [];
  after(async () => {
    for (const p of procs.reverse()) await stop(p);
    rmSync(dir, { recursive: true, force: true });
  });

  it('accepts no forged result of 150 replicated jobs and quarantines exactly the two liars', { timeout: 240_000 }, async () => {
    writeFileSync(join(dir, 'gaffer.toml'), config());
    const serve = gaffer('serve', ['serve', '--port', '0', '--db', join(dir, 'gaffer.db'), '--config', join(dir, 'gaffer.toml'), '--log-level', 'warn']);
    procs.push(serve);
    const url = (await serve.waitLine(/^gaffer: listening on (http:\/\/127\.0\.0\.1:\d+) /))[1]!;
    for (const name of NAMES) {
      const exec = name.startsWith('liar') ? LIAR : HONEST;
      const args = ['worker', '--url', url, '--token', tokenOf(name), '--name', name, '--queue', 'prove:1', '--exec', exec, '--log-level', 'warn'];
      procs.push(gaffer(`worker ${name}`, [...args, '--tmp-dir', join(dir, 'tmp'), '--out-dir', join(dir, 'out')]));
    }
    const client = new GafferClient({ url, token: ADMIN });
    await connectedWorkers(client, [...NAMES]);

    const payloads = Array.from({ length: JOBS }, (_, i): Json => ({ block: i }));
    const submitted = await client.submitMany(payloads.map((payload) => ({ queue: 'prove', payload, replicas: 3, quorum: 2 })));
    const ids = submitted.map((s) => s.job.id);
    await until('every job ended', async () => {
      const { jobs: all } = await client.list({ queue: 'prove', limit: 500 });
      return all.length === JOBS && all.every((j) => ['succeeded', 'failed', 'cancelled'].includes(j.state));
    }, 200_000, 500);
    const jobs = await Promise.all(ids.map((id) => client.get(id)));

    const truth = (p: Json): string => createHash('sha256').update(JSON.stringify(p)).digest('hex').slice(0, 16);
    const wrong = jobs.filter((j) => j.state === 'succeeded' && (j.result as { sum: string }).sum !== truth(j.payload));
    assert.equal(wrong.length, 0, `forged results accepted: ${wrong.map((j) => j.id).join(', ')}\n${tails(serve)}`);
    const succeeded = jobs.filter((j) => j.state === 'succeeded').length;
    assert.ok(succeeded >= JOBS * 0.9, `${succeeded} of ${JOBS} succeeded; the rest ${JSON.stringify(jobs.filter((j) => j.state !== 'succeeded').map((j) => j.error?.message))}`);
    const workers = await client.workers();
    const quarantined = workers.filter((w) => w.quarantined).map((w) => w.name).sort();
    assert.deepEqual(quarantined, ['liar-1', 'liar-2'], JSON.stringify(workers.map((w) => [w.name, w.reputation, w.quarantineReason])));
    for (const w of workers) assert.equal(w.operator, `op-${w.name}`, 'each worker under its own operator');
  });
});
