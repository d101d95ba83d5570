// The worker socket under a worker that misbehaves on the wire: replies keep
// the order of the frames they answer, and a worker that stops reading is
// closed before its unsent frames grow the coordinator's memory. Real sockets
// on 127.0.0.1, a real coordinator on a SQLite file.
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { Writable } from 'node:stream';
import { afterEach, describe, it } from 'node:test';
import { pino } from 'pino';
import { RawClient, startTestCoordinator, type TestCoordinator } from './testing.ts';

const T = { timeout: 60_000 };

describe('worker socket limits', () => {
  let tc: TestCoordinator | null = null;
  const clients: RawClient[] = [];

  afterEach(async () => {
    for (const c of clients.splice(0)) c.ws.terminate();
    await tc?.close();
    tc = null;
  });

  it('answers a malformed frame after the ack of the report sent before it', T, async () => {
    tc = await startTestCoordinator();
    const { job } = await tc.coordinator.submit({ queue: 'work', payload: 1 });
    const c = new RawClient(tc.url);
    clients.push(c);
    await c.hello({ name: 'w', queues: { work: 1 } });
    const [a] = (await c.next('assign')).assignments;
    c.send({ type: 'complete', attemptId: a!.attemptId, lease: a!.lease, result: 2 });
    c.sendText('{ not json');
    const first = await c.next();
    const second = await c.next();
    assert.deepEqual([first.type, second.type], ['ack', 'error']);
    assert.equal((await tc.waitForJob(job.id)).state, 'succeeded');
  });

  it('refuses a connection beyond connectionsMax with 503, and takes one again once another closed', T, async () => {
    tc = await startTestCoordinator({ socket: { connectionsMax: 2 } });
    const open = [new RawClient(tc.url), new RawClient(tc.url)];
    clients.push(...open);
    for (const c of open) await c.opened;
    await open[0]!.hello({ name: 'w1', queues: { work: 1 } });
    const third = new RawClient(tc.url);
    clients.push(third);
    await assert.rejects(third.opened, (err: { status?: number }) => err.status === 503);
    open[1]!.ws.close();
    await open[1]!.closed;
    // The close reaches the coordinator a moment after the client sees it.
    let again: RawClient | null = null;
    for (let i = 0; i < 50 && again === null; i++) {
      const c = new RawClient(tc.url);
      clients.push(c);
      try {
        await c.opened;
        again = c;
      } catch {
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    assert.ok(again, 'a connection is taken again below the bound');
    await again.hello({ name: 'w2', queues: { work: 1 } });
    await tc.coordinator.submit({ queue: 'work', payload: 1 });
    await tc.coordinator.submit({ queue: 'work', payload: 2 });
    const got = await Promise.all([open[0]!.next('assign'), again.next('assign')]);
    assert.equal(got.flatMap((f) => f.assignments).length, 2, 'both connected workers get work');
  });

  it('closes and logs a connection whose client stops reading while frames pile up', T, async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    });
    const sendBufferMaxBytes = 256 * 1024;
    tc = await startTestCoordinator({ socket: { sendBufferMaxBytes }, logger: pino({ level: 'warn' }, sink) });
    const c = new RawClient(tc.url);
    clients.push(c);
    await c.hello({ name: 'deaf', queues: { work: 64 } });
    // The client's TCP socket stops reading: what the coordinator sends stays in the kernel's buffers, then in its own.
    (c.ws as unknown as { _socket: Socket })._socket.pause();
    const payload = 'x'.repeat(900 * 1024);
    await tc.coordinator.submitMany(Array.from({ length: 40 }, () => ({ queue: 'work', payload })));
    await until(() => tc!.coordinator.attachedWorkers === 0);
    const warned = lines.map((l) => JSON.parse(l) as { msg: string; limitBytes?: number }).find((l) => l.msg.includes('does not read its frames'));
    assert.equal(warned?.limitBytes, sendBufferMaxBytes);
  });

  it('puts an assignment claimed while its worker drained back in the queue, uncharged and without backoff', T, async () => {
    tc = await startTestCoordinator();
    const t = tc;
    const c = new RawClient(t.url);
    clients.push(c);
    const welcome = await c.hello({ name: 'leaving', queues: { work: 1 } });
    // The worker drains while the claim that picked it is still in the store.
    const claim = t.store.claim.bind(t.store);
    let drained = false;
    t.store.claim = async (p) => {
      const out = await claim(p);
      if (out.length > 0 && !drained) {
        drained = true;
        c.send({ type: 'drain' });
        await waitFor(async () => ((await t.store.getWorker({ id: welcome.workerId }))?.draining === true ? true : null));
      }
      return out;
    };
    const { job } = await t.coordinator.submit({ queue: 'work', maxAttempts: 1, backoff: { baseMs: 60_000, maxMs: 60_000 } });
    await until(() => drained);
    const attempts = await waitFor(async () => {
      const list = await t.store.listAttempts({ jobId: job.id });
      return list.length > 0 && list.every((a) => a.state !== 'leased' && a.state !== 'running') ? list : null;
    });
    assert.deepEqual(attempts.map((a) => [a.state, a.error?.code]), [['failed', 'WORKER_DRAINING']]);
    const back = await t.coordinator.getJob(job.id);
    assert.deepEqual([back.state, back.failures], ['queued', 0]);
    assert.ok(back.runAt <= Date.now(), 'no backoff');
    // Another worker runs it at once: its one allowed attempt was not used up.
    const other = new RawClient(t.url);
    clients.push(other);
    await other.hello({ name: 'staying', queues: { work: 1 } });
    const [a] = (await other.next('assign')).assignments;
    other.send({ type: 'complete', attemptId: a!.attemptId, lease: a!.lease, result: 'done' });
    assert.equal((await t.waitForJob(job.id)).state, 'succeeded');
    assert.deepEqual(c.pending().filter((f) => f.type === 'assign'), [], 'the draining worker was sent nothing');
  });

  it('hands a cancelled attempt\'s GPU and slot on only once the worker has stopped it', T, async () => {
    tc = await startTestCoordinator();
    const t = tc;
    const c = new RawClient(t.url);
    clients.push(c);
    await c.hello({ name: 'gpu box', queues: { work: 1 }, gpuIds: [0] });
    const { job: first } = await t.coordinator.submit({ queue: 'work', requires: { gpus: 1 } });
    const [a] = (await c.next('assign')).assignments;
    const { job: second } = await t.coordinator.submit({ queue: 'work', requires: { gpus: 1 } });
    await t.coordinator.cancel(first.id);
    assert.deepEqual((await c.next('revoke')).attemptIds, [a!.attemptId]);
    // Still stopping: the worker names it in its heartbeat (and hears it is revoked).
    c.send({ type: 'heartbeat', attempts: [{ attemptId: a!.attemptId, lease: a!.lease }] });
    assert.deepEqual((await c.next('revoke')).attemptIds, [a!.attemptId]);
    await t.coordinator.settled();
    assert.deepEqual(c.pending().filter((f) => f.type === 'assign'), [], 'nothing handed out while it stops');
    // Stopped: a heartbeat without it frees the GPU and the slot.
    c.send({ type: 'heartbeat', attempts: [] });
    const [b] = (await c.next('assign')).assignments;
    assert.deepEqual([b!.jobId, b!.gpuIds], [second.id, [0]]);
  });
});

async function waitFor<T>(read: () => Promise<T | null>): Promise<T> {
  for (;;) {
    const v = await read();
    if (v !== null) return v;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((resolve) => setTimeout(resolve, 20));
}
