// What a person reads in the terminal: the pretty line format, a worker that
// cannot connect saying why (a real closed port, a real coordinator refusing a
// token or a path), each said once, and `gaffer serve` saying a job failed.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { Worker } from '../worker/index.ts';
import { createLogger, isPretty, parseLogFormat, prettyLine } from './log-format.ts';
import { serve } from './serve.ts';

const T = { timeout: 30_000 };

function sink(): { lines: string[]; stream: Writable & { isTTY?: boolean } } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const l of String(chunk).split('\n')) if (l.trim()) lines.push(l);
      done();
    },
  });
  return { lines, stream };
}

async function until(check: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

describe('log format', () => {
  it('a pretty line: time, level word unless info, message, then the fields that matter', () => {
    const line = JSON.stringify({ level: 40, time: Date.UTC(2026, 0, 1, 13, 42, 57), pid: 1, hostname: 'h', component: 'worker', msg: 'worker lost', name: 'prover-a', reason: 'no heartbeat', ids: ['a', 'b'], err: { message: 'boom', stack: 'x' } });
    assert.equal(prettyLine(line), '13:42:57 warn worker lost  name=prover-a reason="no heartbeat" ids=a,b err="boom"');
    assert.equal(prettyLine(JSON.stringify({ level: 30, time: Date.UTC(2026, 0, 1), msg: 'started' })), '00:00:00 started');
    assert.equal(prettyLine('not json'), 'not json');
  });

  it('auto is pretty on a terminal and JSON elsewhere; a bad name is refused', () => {
    assert.equal(isPretty('auto', { isTTY: true }), true);
    assert.equal(isPretty('auto', { isTTY: false }), false);
    assert.equal(isPretty('json', { isTTY: true }), false);
    assert.equal(isPretty('pretty', {}), true);
    assert.throws(() => parseLogFormat('yaml'), /--log-format must be one of auto, pretty, json/);
    const tty = sink();
    tty.stream.isTTY = true;
    createLogger('info', 'auto', tty.stream).info({ a: 1 }, 'hello');
    assert.match(tty.lines[0]!, /^\d\d:\d\d:\d\d hello {2}a=1$/);
    const pipe = sink();
    createLogger('info', 'auto', pipe.stream).info({ a: 1 }, 'hello');
    assert.equal((JSON.parse(pipe.lines[0]!) as { msg: string }).msg, 'hello');
  });
});

describe('a worker that cannot connect says why, once', () => {
  const worker = (url: string, log: ReturnType<typeof sink>, token?: string): Worker =>
    new Worker({
      urls: url,
      ...(token ? { token } : {}),
      name: 'w',
      queues: { q: { slots: 1, handler: () => null } },
      logger: pino({ level: 'info' }, log.stream),
      reconnectBaseDelayMs: 10,
      reconnectMaxDelayMs: 20,
      handleSignals: false,
    });
  const messages = (log: ReturnType<typeof sink>): string[] => log.lines.map((l) => (JSON.parse(l) as { msg: string }).msg);

  it('a closed port: connection refused, said once over many tries', T, async () => {
    const port = await closedPort();
    const log = sink();
    const w = worker(`http://127.0.0.1:${port}`, log);
    void w.start().catch(() => undefined);
    let tries = 0;
    w.on('disconnected', () => tries++);
    await until(() => tries >= 5, 'five failed tries');
    await w.stop('test over');
    const said = messages(log).filter((m) => m.includes('cannot connect'));
    assert.equal(said.length, 1, messages(log).join('\n'));
    assert.match(said[0]!, new RegExp(`cannot connect to ws://127\\.0\\.0\\.1:${port}/v1/worker: connection refused .*GAFFER_URL`));
  });

  it('a real coordinator refusing the token, and a wrong path', T, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gaffer-log-format-'));
    const token = 'a-token-of-enough-characters-1234';
    const config = { host: '127.0.0.1', port: 0, db: join(dir, 'gaffer.db'), sqliteSync: 'normal' as const, tokens: [{ token, scopes: ['admin', 'client', 'worker'] as const, operator: null }], queues: {} };
    const served = await serve(config as never, pino({ level: 'silent' }));
    try {
      const badToken = sink();
      const w1 = worker(served.server.url, badToken, 'wrong-token');
      const badPath = sink();
      const w2 = worker(`${served.server.url}/nope`, badPath, token);
      void w1.start().catch(() => undefined);
      void w2.start().catch(() => undefined);
      await until(() => badToken.lines.length > 0 && badPath.lines.length > 0, 'both complaints');
      await Promise.all([w1.stop('over'), w2.stop('over')]);
      assert.match(messages(badToken)[0]!, /refused this worker's token \(HTTP 401\): check --token or GAFFER_TOKEN/);
      assert.match(messages(badPath)[0]!, /no worker endpoint at ws:\/\/127\.0\.0\.1:\d+\/nope \(HTTP 404\)/);
    } finally {
      await served.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

it('gaffer serve says a job failed, with its queue and error', T, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gaffer-job-log-'));
  const log = sink();
  const config = { host: '127.0.0.1', port: 0, db: join(dir, 'gaffer.db'), sqliteSync: 'normal' as const, tokens: [], queues: {} };
  const served = await serve(config, pino({ level: 'info' }, log.stream));
  const w = new Worker({
    urls: served.server.url,
    name: 'breaker',
    queues: { broken: { slots: 1, handler: () => { throw new Error('no such circuit'); } } },
    handleSignals: false,
  });
  try {
    await w.start();
    const { job: { id } } = await served.coordinator.submit({ queue: 'broken', payload: {}, maxAttempts: 1 });
    await until(() => log.lines.some((l) => l.includes('"job failed"')), 'the job failed line');
    const line = JSON.parse(log.lines.find((l) => l.includes('"job failed"'))!) as Record<string, unknown>;
    assert.equal(line.jobId, id);
    assert.equal(line.queue, 'broken');
    assert.equal(line.level, 40);
    assert.match(String(line.reason), /no such circuit/);
  } finally {
    await w.stop('over');
    await served.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
