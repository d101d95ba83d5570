// Slow, fat and unauthenticated clients over raw TCP on 127.0.0.1, against a
// real coordinator on a SQLite file: every one is answered in the one error
// shape, and its connection closed, within a generous bound (the timeouts are
// short here; nothing asserts how soon).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { Coordinator } from '../coordinator/coordinator.ts';
import { openSqliteStore, type SqliteStore } from '../store/sqlite/store.ts';
import { systemClock, systemRandom } from '../types/clock.ts';
import { LIMITS } from '../types/limits.ts';
import { Auth } from './auth.ts';
import { buildHttpApp } from './http.ts';

const TOKEN = 'client-secret-token';
/** Every connection here must be closed by the server well within this (its timeouts are far shorter). */
const CLOSED_WITHIN_MS = 20_000;

/** A raw connection: what the server sent, and when it closed (or reset) the connection. */
class RawConnection {
  readonly socket: Socket;
  readonly ended: Promise<{ text: string; error: string | null }>;
  private readonly chunks: Buffer[] = [];

  constructor(port: number) {
    this.socket = connect(port, '127.0.0.1');
    this.ended = new Promise((resolve) => {
      let error: string | null = null;
      this.socket.on('data', (d) => this.chunks.push(d));
      this.socket.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
      this.socket.on('close', () => resolve({ text: this.text(), error }));
    });
  }

  text(): string {
    return Buffer.concat(this.chunks).toString('latin1');
  }

  /** Writes, resolving when written or when the connection is gone (a write after close is not an error here). */
  write(data: string | Buffer): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.destroyed || !this.socket.writable) return resolve();
      this.socket.write(data, () => resolve());
    });
  }

  /** Resolves once closed; fails the test if the server has not closed it within CLOSED_WITHIN_MS. */
  async closed(): Promise<{ text: string; error: string | null }> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`still open after ${CLOSED_WITHIN_MS} ms; got ${this.text().slice(0, 200)}`)), CLOSED_WITHIN_MS);
    });
    try {
      return await Promise.race([this.ended, late]);
    } finally {
      clearTimeout(timer);
      this.socket.destroy();
    }
  }
}

/** The status, headers and JSON body of the one HTTP answer in `text`. */
function parseAnswer(text: string): { status: number; headers: Record<string, string>; body: any } {
  const end = text.indexOf('\r\n\r\n');
  assert.ok(end > 0, `an HTTP answer, not ${JSON.stringify(text.slice(0, 200))}`);
  const [statusLine, ...lines] = text.slice(0, end).split('\r\n');
  const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
  return { status: Number(statusLine!.split(' ')[1]), headers, body: JSON.parse(text.slice(end + 4, end + 4 + Number(headers['content-length']))) };
}

function assertError(text: string, status: number, code: string): void {
  const a = parseAnswer(text);
  assert.equal(a.status, status, text.slice(0, 300));
  assert.equal(a.body?.error?.code, code);
  assert.equal(typeof a.body.error.message, 'string');
  assert.deepEqual(Object.keys(a.body), ['error']);
  assert.match(a.headers['content-type'] ?? '', /^application\/json/);
  assert.equal(a.headers.connection, 'close');
}

const head = (lines: string[]): string => `${lines.join('\r\n')}\r\n\r\n`;

describe('http connections: slow, fat and unauthenticated clients', () => {
  let dir: string;
  let store: SqliteStore;
  let coordinator: Coordinator;
  let app: FastifyInstance;
  let port: number;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gaffer-conn-'));
    store = openSqliteStore({ path: join(dir, 'gaffer.db'), clock: systemClock, random: systemRandom() });
    coordinator = new Coordinator({ store, clock: systemClock, sweepIntervalMs: 50 });
    coordinator.start();
    app = await buildHttpApp({
      coordinator,
      auth: new Auth([{ token: TOKEN, scopes: ['client'] }]),
      logger: false,
      timeouts: { headersTimeoutMs: 300, requestTimeoutMs: 600, timeoutCheckIntervalMs: 50, closeLingerMs: 10_000 },
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    port = (app.server.address() as AddressInfo).port;
  });

  after(async () => {
    await app.close();
    await coordinator.stop();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function stillAnswers(): Promise<void> {
    const res = await fetch(`http://127.0.0.1:${port}/healthz`);
    assert.equal(res.status, 200);
  }

  it('answers a body that arrives too slowly with 408 REQUEST_TIMEOUT and closes the connection', async () => {
    const c = new RawConnection(port);
    await c.write(head(['POST /v1/jobs HTTP/1.1', 'Host: x', `Authorization: Bearer ${TOKEN}`, 'Content-Type: application/json', 'Content-Length: 100000']));
    // A byte now and then, for as long as the connection stays open.
    const drip = setInterval(() => void c.write('x'), 50);
    try {
      const { text } = await c.closed();
      assertError(text, 408, 'REQUEST_TIMEOUT');
    } finally {
      clearInterval(drip);
    }
    assert.equal((await store.listJobs({ limit: 10 })).jobs.length, 0, 'nothing was written');
    await stillAnswers();
  });

  it('answers headers that arrive too slowly with 408 REQUEST_TIMEOUT and closes the connection', async () => {
    const c = new RawConnection(port);
    await c.write('GET /healthz HTTP/1.1\r\nHost: x\r\n');
    const drip = setInterval(() => void c.write('X-Slow: y\r\n'), 50);
    try {
      assertError((await c.closed()).text, 408, 'REQUEST_TIMEOUT');
    } finally {
      clearInterval(drip);
    }
  });

  it('answers a request without a token 401 before its body, and closes the connection without waiting for the body', async () => {
    const c = new RawConnection(port);
    await c.write(head(['POST /v1/jobs HTTP/1.1', 'Host: x', 'Content-Type: application/json', `Content-Length: ${7 * 1024 * 1024}`]));
    // No byte of the body is sent: the answer and the close come anyway.
    const { text } = await c.closed();
    assertError(text, 401, 'UNAUTHORIZED');
    await stillAnswers();
  });

  it('answers a 20 MB body with a 413 PAYLOAD_TOO_LARGE the client reads, not a reset', async () => {
    for (const framing of ['content-length', 'chunked'] as const) {
      const c = new RawConnection(port);
      const body = Buffer.alloc(20 * 1024 * 1024, 'x');
      const lengthHeader = framing === 'chunked' ? 'Transfer-Encoding: chunked' : `Content-Length: ${body.length}`;
      await c.write(head(['POST /v1/jobs HTTP/1.1', 'Host: x', `Authorization: Bearer ${TOKEN}`, 'Content-Type: application/json', lengthHeader]));
      if (framing === 'chunked') {
        for (let i = 0; i < body.length; i += 1024 * 1024) await c.write(`100000\r\n${body.subarray(i, i + 1024 * 1024).toString('latin1')}\r\n`);
        await c.write('0\r\n\r\n');
      } else {
        await c.write(body);
      }
      const { text, error } = await c.closed();
      assert.equal(error, null, `${framing}: closed without a reset`);
      assertError(text, 413, 'PAYLOAD_TOO_LARGE');
      assert.equal(parseAnswer(text).body.error.details.maxBytes, LIMITS.httpBodyMaxBytes);
    }
    await stillAnswers();
  });

  it('lets a long poll and an event stream outlast the request timeout: it bounds how long a request takes to arrive, not to be answered', async () => {
    const { job } = await coordinator.submit({ queue: 'idle.q' });
    const headers = { authorization: `Bearer ${TOKEN}` };
    const res = await fetch(`http://127.0.0.1:${port}/v1/jobs/${job.id}/result?waitMs=1500`, { headers });
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { id: string }).id, job.id);
    const stream = await fetch(`http://127.0.0.1:${port}/v1/events`, { headers });
    assert.equal(stream.status, 200);
    const reader = stream.body!.getReader();
    await reader.read(); // ': connected'
    await new Promise((r) => setTimeout(r, 1500));
    await coordinator.submit({ queue: 'idle.q' });
    let seen = '';
    while (!seen.includes('event: job')) {
      const { value, done } = await reader.read();
      assert.equal(done, false, 'the stream is still open');
      seen += new TextDecoder().decode(value);
    }
    await reader.cancel();
  });

  it('answers headers over httpHeadersMaxBytes with 431 HEADERS_TOO_LARGE in the one error shape', async () => {
    const c = new RawConnection(port);
    await c.write(head(['GET /healthz HTTP/1.1', 'Host: x', `X-Big: ${'a'.repeat(LIMITS.httpHeadersMaxBytes + 1)}`]));
    const { text } = await c.closed();
    assertError(text, 431, 'HEADERS_TOO_LARGE');
    assert.equal(parseAnswer(text).body.error.details.maxBytes, LIMITS.httpHeadersMaxBytes);
    await stillAnswers();
  });
});
