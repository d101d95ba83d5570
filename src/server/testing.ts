// Test helpers (used by tests only): a real coordinator on a SQLite file in a
// temp dir, on the system clock, behind a node:http server on 127.0.0.1 with
// the worker socket attached; and a raw protocol client that reads frames one
// by one, for tests that speak the protocol by hand.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { WebSocket } from 'ws';
import assert from 'node:assert/strict';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { Coordinator } from '../coordinator/coordinator.ts';
import { openSqliteStore } from '../store/sqlite/store.ts';
import type { Store } from '../store/store.ts';
import { systemClock, systemRandom } from '../types/clock.ts';
import type { Job } from '../types/model.ts';
import { isTerminalJobState } from '../types/states.ts';
import { PROTOCOL_VERSION, WORKER_PATH, type CoordinatorFrame, type HelloFrame } from '../types/protocol.ts';
import { Auth } from './auth.ts';
import { attachWorkerSocket, type WorkerSocketHandle, type WorkerSocketOptions } from './worker-socket.ts';

export const TEST_TOKEN = 'test-worker-token';

export interface TestCoordinator {
  coordinator: Coordinator;
  store: Store;
  /** ws://127.0.0.1:<port>/v1/worker */
  url: string;
  port: number;
  /** Destroys every open TCP connection (as a network failure would); the server keeps listening. */
  dropConnections(): void;
  /** Stops listening and drops every connection: the coordinator is unreachable, its store and state intact. */
  pause(): Promise<void>;
  /** Listens again on the same port. */
  resume(): Promise<void>;
  /** Waits until the job has ended and returns it. */
  waitForJob(id: string, waitMs?: number): Promise<Job>;
  close(): Promise<void>;
}

export interface TestCoordinatorOptions {
  /** Null: no auth. Default TEST_TOKEN. */
  token?: string | null;
  auth?: Auth;
  socket?: WorkerSocketOptions;
  sweepIntervalMs?: number;
  /** The worker socket's logger (silent when left out). */
  logger?: Logger;
}

export async function startTestCoordinator(options: TestCoordinatorOptions = {}): Promise<TestCoordinator> {
  const dir = mkdtempSync(join(tmpdir(), 'gaffer-ws-'));
  const store = openSqliteStore({ path: join(dir, 'gaffer.db'), clock: systemClock, random: systemRandom(), synchronous: 'normal' });
  const coordinator = new Coordinator({ store, clock: systemClock, sweepIntervalMs: options.sweepIntervalMs ?? 50 });
  coordinator.start();
  const token = options.token === undefined ? TEST_TOKEN : options.token;
  const auth = options.auth ?? new Auth(token === null ? [] : [{ token, scopes: ['worker'] }]);
  let server: Server = createServer((_req, res) => res.writeHead(404).end());
  const sockets = new Set<Socket>();
  const track = (s: Server): void => {
    s.on('connection', (sock) => {
      sockets.add(sock);
      sock.on('close', () => sockets.delete(sock));
    });
  };
  track(server);
  await listen(server, 0);
  const port = (server.address() as AddressInfo).port;
  const socketDeps = { coordinator, auth, ...(options.socket ? { options: options.socket } : {}), ...(options.logger ? { logger: options.logger } : {}) };
  let handle: WorkerSocketHandle = attachWorkerSocket(server, socketDeps);
  const drop = (): void => {
    for (const s of sockets) s.destroy();
  };
  return {
    coordinator,
    store,
    url: `ws://127.0.0.1:${port}${WORKER_PATH}`,
    port,
    dropConnections: drop,
    async pause() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      drop();
      await handle.close();
      await closed;
    },
    async resume() {
      server = createServer((_req, res) => res.writeHead(404).end());
      track(server);
      handle = attachWorkerSocket(server, socketDeps);
      await listen(server, port);
    },
    async waitForJob(id, waitMs = 30_000) {
      const job = await coordinator.waitForJob(id, waitMs);
      if (!isTerminalJobState(job.state)) throw new Error(`job ${id} is still ${job.state} after ${waitMs} ms`);
      return job;
    },
    async close() {
      drop();
      await handle.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await coordinator.stop();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function listen(server: Server, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** A protocol client driven by hand: send frames, await the next frame of a type, await the close. */
export class RawClient {
  readonly ws: WebSocket;
  readonly opened: Promise<void>;
  readonly closed: Promise<{ code: number; reason: string }>;
  private readonly frames: CoordinatorFrame[] = [];
  private readonly waiters: { type: string | undefined; resolve: (f: CoordinatorFrame) => void }[] = [];

  constructor(url: string, token: string | null = TEST_TOKEN) {
    this.ws = new WebSocket(url, { headers: token === null ? {} : { authorization: `Bearer ${token}` } });
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode })));
      this.ws.once('error', reject);
    });
    this.opened.catch(() => undefined);
    this.closed = new Promise((resolve) => this.ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    this.ws.on('error', () => undefined);
    this.ws.on('message', (data) => {
      const frame = JSON.parse(String(data)) as CoordinatorFrame;
      const i = this.waiters.findIndex((w) => w.type === undefined || w.type === frame.type);
      if (i >= 0) this.waiters.splice(i, 1)[0]!.resolve(frame);
      else this.frames.push(frame);
    });
  }

  send(frame: object): void {
    this.ws.send(JSON.stringify(frame));
  }

  sendText(text: string | Buffer): void {
    this.ws.send(text);
  }

  /** The next frame (of this type, when given) not yet taken; frames of other types stay queued. */
  next<T extends CoordinatorFrame['type']>(type?: T): Promise<Extract<CoordinatorFrame, { type: T }>> {
    const i = this.frames.findIndex((f) => type === undefined || f.type === type);
    if (i >= 0) return Promise.resolve(this.frames.splice(i, 1)[0] as Extract<CoordinatorFrame, { type: T }>);
    return new Promise((resolve) => this.waiters.push({ type, resolve: resolve as (f: CoordinatorFrame) => void }));
  }

  /** Frames received and not taken yet. */
  pending(): CoordinatorFrame[] {
    return [...this.frames];
  }

  /** Says hello and returns the welcome. */
  async hello(worker: HelloFrame['worker'], attempts?: HelloFrame['attempts']): Promise<Extract<CoordinatorFrame, { type: 'welcome' }>> {
    await this.opened;
    this.send({ type: 'hello', protocol: PROTOCOL_VERSION, worker, ...(attempts ? { attempts } : {}) });
    return this.next('welcome');
  }

  close(): void {
    this.ws.close();
  }
}

/**
 * Checks answers against the OpenAPI document's component schemas:
 * `conforms(name, value)` fails the test when `value` does not match
 * `#/components/schemas/<name>`; `has(name)` tells whether the schema compiled.
 */
export function openApiChecker(doc: unknown): { conforms(name: string, value: unknown): void; has(name: string): boolean } {
  const ajv = new Ajv2020({ strict: false, validateFormats: false });
  ajv.addSchema(doc as object, 'doc');
  return {
    conforms(name, value) {
      const validate = ajv.getSchema(`doc#/components/schemas/${name}`);
      assert.ok(validate, name);
      assert.ok(validate(value), `${name}: ${JSON.stringify(validate.errors)}`);
    },
    has: (name) => ajv.getSchema(`doc#/components/schemas/${name}`) !== undefined,
  };
}
