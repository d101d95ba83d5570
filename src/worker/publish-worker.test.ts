// The SDK worker publishing through a directory publisher: a real
// coordinator on 127.0.0.1 (SQLite store, worker socket), a handler function
// that names its output directory. The accepted output is copied and the job
// carries its manifest; the worker then removes the directory. A failed
// attempt's output is removed at once and nothing is published.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startTestCoordinator, TEST_TOKEN, type TestCoordinator } from '../server/testing.ts';
import type { Job, Json } from '../types/model.ts';
import type { HandlerContext } from './handler.ts';
import { dirPublisher } from './publish/dir.ts';
import { sha256File } from './publish/publisher.ts';
import { Worker } from './worker.ts';

const WAIT_MS = 30_000;

async function until<T>(what: string, check: () => Promise<T | undefined>): Promise<T> {
  const giveUpAt = Date.now() + WAIT_MS;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > giveUpAt) throw new Error(`${what}: not within ${WAIT_MS} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('sdk worker: publishing to a directory', () => {
  let root: string;
  let tc: TestCoordinator;
  let worker: Worker;
  const made: string[] = [];

  /** Writes an output directory for the attempt, names it, and answers (or throws, with payload.fail). */
  const seal = (payload: Json, ctx: HandlerContext): Json => {
    const dir = join(root, 'work', ctx.assignment.attemptId);
    mkdirSync(join(dir, 'sealed'), { recursive: true });
    writeFileSync(join(dir, 'sealed', 'sector.bin'), Buffer.alloc(70_000, 7));
    writeFileSync(join(dir, 'commit.json'), JSON.stringify(payload));
    made.push(dir);
    ctx.setOutputDir(dir);
    if ((payload as { fail?: boolean }).fail) throw new Error('the seal failed');
    return { sealed: true };
  };

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'gaffer-sdk-publish-'));
    tc = await startTestCoordinator();
    worker = new Worker({
      urls: tc.url,
      token: TEST_TOKEN,
      name: 'sealer',
      handleSignals: false,
      queues: { seal: { slots: 2, handler: seal, publish: dirPublisher({ name: 'shared', path: join(root, 'published'), prefix: 'sectors' }) } },
    });
    await worker.start();
  });

  after(async () => {
    await worker.stop();
    await tc.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('copies the accepted output, records the manifest on the job, then removes the output', async () => {
    const { job } = await tc.coordinator.submit({ queue: 'seal', payload: { sector: 1001 } });
    const done = await until('published', async () => {
      const j: Job = await tc.coordinator.getJob(job.id);
      return j.publish?.state === 'published' ? j : undefined;
    });
    assert.deepEqual(done.result, { sealed: true });
    const m = done.publish!.manifest!;
    assert.deepEqual([m.publisher, m.kind, m.bytes], ['shared', 'dir', 70_000 + JSON.stringify({ sector: 1001 }).length]);
    assert.deepEqual(m.objects.map((o) => o.path), ['commit.json', 'sealed/sector.bin']);
    for (const o of m.objects) {
      const copy = join(root, 'published', 'sectors', job.id, o.path);
      assert.equal(await sha256File(copy), o.sha256);
    }
    assert.equal(readFileSync(join(root, 'published', 'sectors', job.id, 'commit.json'), 'utf8'), '{"sector":1001}');
    const dir = made.at(-1)!;
    await until('the output removed', async () => (existsSync(dir) ? undefined : true));
  });

  it("removes a failed attempt's output at once and publishes nothing", async () => {
    const { job } = await tc.coordinator.submit({ queue: 'seal', payload: { sector: 1002, fail: true }, maxAttempts: 1 });
    const ended = await tc.waitForJob(job.id);
    assert.equal(ended.state, 'failed');
    assert.equal(ended.publish, null);
    const dir = made.at(-1)!;
    await until('the failed output removed', async () => (existsSync(dir) ? undefined : true));
    assert.equal(existsSync(join(root, 'published', 'sectors', job.id)), false);
  });
});
