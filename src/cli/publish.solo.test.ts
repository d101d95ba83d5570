// Publishing end to end: a real coordinator (SQLite store, HTTP API and worker
// socket on 127.0.0.1), `gaffer worker --exec` processes that publish their
// output directories to a real S3-protocol server (s3rver), and the objects
// read back. A lying replica is rejected and publishes nothing; a publish
// that fails while the store is down is retried once it is back, and the
// accepted result stays throughout; a worker killed before its result was
// accepted publishes once it comes back.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { GafferClient } from '../client/client.ts';
import { Coordinator } from '../coordinator/coordinator.ts';
import { startServer, type RunningServer } from '../server/index.ts';
import { Auth } from '../server/auth.ts';
import { openSqliteStore } from '../store/sqlite/store.ts';
import type { Store } from '../store/store.ts';
import { systemClock, systemRandom } from '../types/clock.ts';
import type { Job, JobSpec } from '../types/model.ts';
import { S3_TEST_CREDENTIALS, startTestS3, type TestS3 } from '../worker/publish/testing.ts';
import { BOUNDS, connectedWorkers, gaffer, kill9, runScript, stop, tails, until, type Proc } from './testing.ts';

const MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));
const TASK = fileURLToPath(new URL('./fixtures/publish-square.sh', import.meta.url));
const MIB = 1024 * 1024;
const BUCKET = 'outputs';

describe('publishing, end to end', () => {
  let root: string;
  let s3: TestS3;
  let store: Store;
  let coordinator: Coordinator;
  let server: RunningServer;
  let client: GafferClient;
  const procs: Proc[] = [];

  /** A `gaffer worker --exec` publishing to the test bucket under runs/. */
  const worker = (name: string, queues: string[], env: Record<string, string> = {}, extra: string[] = []): Proc => {
    const args = ['worker', '--url', server.url, '--name', name, '--exec', `sh '${TASK}'`, '--out-dir', join(root, 'out', name), '--log-level', 'warn'];
    for (const q of queues) args.push('--queue', q);
    args.push('--publish-s3', `s3://${BUCKET}/runs`, '--s3-endpoint', s3.endpoint, '--s3-path-style', ...extra);
    const p = gaffer(name, args, { AWS_ACCESS_KEY_ID: S3_TEST_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: S3_TEST_CREDENTIALS.secretAccessKey, WORKER_TAG: name, ...env });
    procs.push(p);
    return p;
  };

  const job = (id: string): Promise<Job> => client.get(id);
  const published = (id: string): Promise<Job> =>
    until(`job ${id} published`, async () => {
      const j = await job(id);
      return j.publish?.state === 'published' ? j : undefined;
    });
  const submit = async (spec: JobSpec): Promise<string> => (await client.submit(spec)).job.id;

  /** Each object of the manifest is in the bucket, under runs/<job>/, with the bytes the manifest says. */
  async function checkObjects(j: Job): Promise<void> {
    const m = j.publish!.manifest!;
    assert.deepEqual(m.objects.map((o) => o.path), ['answer.txt', 'blob.bin', 'logs/who.txt']);
    for (const o of m.objects) {
      const key = `runs/${j.id}/${o.path}`;
      assert.equal(o.url, `${s3.endpoint}/${BUCKET}/${key}`);
      const back = await s3.read(BUCKET, key);
      assert.equal(back.sha256, o.sha256, `${o.path}: the object read back has the manifest's SHA-256`);
      assert.equal(back.bytes, o.bytes);
    }
  }

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'gaffer-publish-e2e-'));
    s3 = await startTestS3([BUCKET]);
    // New workers' votes need no larger lead here: three workers, all on probation, decide the vote.
    store = openSqliteStore({ path: join(root, 'gaffer.db'), clock: systemClock, random: systemRandom(), synchronous: 'normal', trust: { probationMarginBonus: 0 } });
    coordinator = new Coordinator({
      store,
      clock: systemClock,
      sweepIntervalMs: 50,
      publishing: { checkIntervalMs: 100, failedRetryBaseDelayMs: 200, failedRetryMaxDelayMs: 1000 },
    });
    coordinator.start();
    server = await startServer({ coordinator, auth: new Auth([]), host: '127.0.0.1', port: 0 });
    client = new GafferClient({ url: server.url });
    worker('honest-1', ['prove', 'seal']);
    worker('honest-2', ['prove', 'seal']);
    worker('liar', ['prove'], { LIAR: '1' });
    await connectedWorkers(client, ['honest-1', 'honest-2', 'liar'], BOUNDS.jobsMs);
  });

  after(async () => {
    await Promise.all(procs.map((p) => stop(p)));
    await server?.close();
    await coordinator?.stop();
    await store?.close();
    await s3?.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('publishes the accepted replica\'s output only: the liar\'s is rejected or cancelled and never reaches the bucket', async () => {
    const id = await submit({ queue: 'prove', payload: { n: 7, bytes: 300_000 }, replicas: 3, quorum: 2, margin: 1, distinct: 'worker' });
    const j = await published(id);
    assert.equal(j.state, 'succeeded');
    assert.deepEqual(j.result, { square: 49 });
    const { attemptList } = await client.get(id);
    const workers = await client.workers();
    const nameOf = (workerId: string): string => workers.find((w) => w.id === workerId)?.name ?? '?';
    // The liar's result is rejected when it came before the vote ended, and its attempt cancelled when the two honest replicas settled it first.
    const liar = attemptList.filter((a) => nameOf(a.workerId) === 'liar');
    assert.equal(liar.length, 1);
    assert.ok(['rejected', 'cancelled'].includes(liar[0]!.state), `the liar's attempt ended ${liar[0]!.state}`);
    assert.deepEqual(attemptList.filter((a) => a.state === 'rejected').map((a) => nameOf(a.workerId)), liar[0]!.state === 'rejected' ? ['liar'] : []);
    assert.notEqual(nameOf(j.publish!.workerId), 'liar');
    assert.equal(attemptList.find((a) => a.id === j.publish!.attemptId)?.state, 'completed');
    await checkObjects(j);
    // Exactly the accepted output is in the bucket: the honest answer, from the worker that published.
    assert.deepEqual(await s3.keys(BUCKET), j.publish!.manifest!.objects.map((o) => `runs/${id}/${o.path}`));
    assert.equal(j.publish!.manifest!.objects.find((o) => o.path === 'blob.bin')!.bytes, 300_000);
    // Every replica's output directory goes: the published one once recorded, the others discarded.
    for (const a of attemptList) {
      const dir = join(root, 'out', nameOf(a.workerId), id, a.id);
      await until(`the output of ${nameOf(a.workerId)} removed`, async () => !existsSync(dir));
    }
    const shown = await runScript(MAIN, ['job', id, '--url', server.url], BOUNDS.startMs);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /publish\s+published by worker/);
    for (const o of j.publish!.manifest!.objects) assert.ok(shown.stdout.includes(`${o.url}  ${o.bytes} bytes  sha256 ${o.sha256}`), o.path);
  });

  it('keeps the accepted result while the store is down, shows the failed publish, and publishes once the store is back', async () => {
    await s3.stop();
    const id = await submit({ queue: 'seal', payload: { n: 5, bytes: 12 * MIB } });
    const failed = await until(`job ${id}'s publish failed`, async () => {
      const j = await job(id);
      return j.publish?.state === 'failed' ? j : undefined;
    });
    assert.equal(failed.state, 'succeeded');
    assert.deepEqual(failed.result, { square: 25 });
    assert.equal(failed.publish!.error?.code, 'PUBLISH_FAILED');
    assert.ok(failed.publish!.tries >= 1);
    assert.equal(failed.publish!.manifest, null);
    await s3.start();
    const j = await published(id);
    assert.equal(j.state, 'succeeded');
    assert.deepEqual(j.result, { square: 25 }, 'the accepted result never changed');
    assert.equal(j.publish!.error, null);
    assert.equal(j.publish!.manifest!.objects.find((o) => o.path === 'blob.bin')!.bytes, 12 * MIB);
    await checkObjects(j);
  });

  it('a worker killed before its result is accepted publishes once it is back', async () => {
    const gate = join(root, 'gate');
    const stateFile = join(root, 'voter-a.state.json');
    let a = worker('voter-a', ['vote'], {}, ['--state-file', stateFile]);
    worker('voter-b', ['vote'], { GATE_FILE: gate });
    const [voterA] = await connectedWorkers(client, ['voter-a', 'voter-b'], BOUNDS.jobsMs);
    const id = await submit({ queue: 'vote', payload: { n: 3, bytes: 1000 }, replicas: 2, quorum: 2, margin: 1, distinct: 'worker' });
    await until(`voter-a's result of ${id} in`, async () => (await client.get(id)).attemptList.some((x) => x.workerId === voterA!.id && x.state === 'completed'));
    await kill9(a);
    writeFileSync(gate, '');
    const accepted = await until(`job ${id} succeeded`, async () => {
      const j = await job(id);
      return j.state === 'succeeded' ? j : undefined;
    });
    // The first result in wins: voter-a's, whose worker is gone. The publish waits for it, durably.
    assert.equal(accepted.publish?.workerId, voterA!.id);
    assert.notEqual(accepted.publish?.state, 'published');
    a = worker('voter-a', ['vote'], {}, ['--state-file', stateFile]);
    const j = await published(id).catch((err: unknown) => assert.fail(`${String(err)}\n${tails(a)}`));
    assert.equal(j.publish!.workerId, voterA!.id);
    assert.equal(j.publish!.tries, 0);
    await checkObjects(j);
    const answer = j.publish!.manifest!.objects.find((o) => o.path === 'answer.txt')!;
    assert.equal(answer.sha256, (await s3.read(BUCKET, `runs/${id}/answer.txt`)).sha256);
  });
});
