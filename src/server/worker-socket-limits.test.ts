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
});

async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((resolve) => setTimeout(resolve, 20));
}
