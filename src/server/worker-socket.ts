// The worker endpoint: a WebSocket at /v1/worker on the coordinator's HTTP
// server. Each connection says hello, becomes a WorkerSession, and from then
// on its frames map one to one onto the session (docs/worker-protocol.md).
//
// - Auth happens on the upgrade request (Authorization: Bearer, worker scope);
//   a refused request gets a plain HTTP answer and never becomes a WebSocket.
// - Frames of one connection are handled in the order sent, so a complete
//   never overtakes the heartbeat before it, and the replies to them (acks,
//   revokes, error frames, malformed frames' included) go out in that order.
// - Frames to a worker that stops reading pile up in the socket's buffer: past
//   sendBufferMaxBytes the connection is closed (4413).
// - A dropped connection only detaches its session: the leases stay until
//   their heartbeat timeout, and a hello that presents them resumes them.
// - Bad frames get an error frame; after protocolViolationsMax of them the
//   connection (and only it) is closed.
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { pino, type Logger } from 'pino';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import type { Coordinator, WorkerLink, WorkerSession } from '../coordinator/coordinator.ts';
import type { LeaseRef } from '../store/store.ts';
import type { TimerHandle } from '../types/clock.ts';
import { GafferError, isGafferError } from '../types/errors.ts';
import { PROTOCOL_DEFAULTS } from '../types/limits.ts';
import type { Assignment } from '../types/model.ts';
import {
  CLOSE_CODES,
  PROTOCOL_VERSION,
  WORKER_PATH,
  type CoordinatorFrame,
  type ErrorFrame,
  type HelloFrame,
  type WorkerFrame,
} from '../types/protocol.ts';
import type { Auth } from './auth.ts';
import { FrameError, parseWorkerFrame } from './worker-frames.ts';

/** Bounds and timings; each defaults to PROTOCOL_DEFAULTS. */
export interface WorkerSocketOptions {
  heartbeatIntervalMs?: number;
  frameMaxBytes?: number;
  frameHardMaxBytes?: number;
  protocolViolationsMax?: number;
  helloTimeoutMs?: number;
  idleTimeoutMs?: number;
  frameQueueMax?: number;
  sendBufferMaxBytes?: number;
  connectionsMax?: number;
}

export interface WorkerSocketDeps {
  coordinator: Coordinator;
  auth: Auth;
  logger?: Logger;
  options?: WorkerSocketOptions;
}

export interface WorkerSocketHandle {
  /** Stops taking connections, closes the open ones (1001) and detaches their sessions. */
  close(): Promise<void>;
}

type Settings = Required<WorkerSocketOptions>;
type Log = Logger;

/** How long close() waits for a closing handshake before cutting the socket. */
const CLOSE_GRACE_MS = 1000;

export function attachWorkerSocket(server: Server, deps: WorkerSocketDeps): WorkerSocketHandle {
  const settings: Settings = { ...PROTOCOL_DEFAULTS, ...definedOnly(deps.options ?? {}) };
  const log: Log = (deps.logger ?? pino({ level: 'silent' })).child({ component: 'worker-socket' });
  const wss = new WebSocketServer({ noServer: true, maxPayload: settings.frameHardMaxBytes, perMessageDeflate: false });
  const connections = new Set<WorkerConnection>();
  const byWorker = new Map<string, WorkerConnection>();
  let closing = false;

  const registry: Registry = {
    claim(conn, workerId) {
      const previous = byWorker.get(workerId);
      byWorker.set(workerId, conn);
      if (previous && previous !== conn) previous.close(CLOSE_CODES.superseded, 'another connection said hello as this worker');
    },
    release(conn) {
      connections.delete(conn);
      if (conn.workerId !== null && byWorker.get(conn.workerId) === conn) byWorker.delete(conn.workerId);
    },
  };

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on('error', () => undefined);
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (path !== WORKER_PATH) {
      refuse(socket, new GafferError('ROUTE_NOT_FOUND', `no WebSocket endpoint at ${path}; workers connect to ${WORKER_PATH}`));
      return;
    }
    if (closing) {
      refuse(socket, new GafferError('NOT_READY', 'the coordinator is shutting down'));
      return;
    }
    let operator: string | null;
    try {
      operator = deps.auth.check(req.headers.authorization, 'worker').operator;
    } catch (err) {
      refuse(socket, isGafferError(err) ? err : new GafferError('UNAUTHORIZED'));
      return;
    }
    if (connections.size >= settings.connectionsMax) {
      log.warn({ connections: connections.size }, 'refused a worker connection: the coordinator holds connectionsMax of them');
      refuse(socket, new GafferError('NOT_READY', `the coordinator holds its most worker connections (${settings.connectionsMax}); try again later`));
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const remote = `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? '?'}`;
      const conn = new WorkerConnection(ws, deps.coordinator, settings, log.child({ remote }), registry, operator);
      connections.add(conn);
      if (closing) conn.close(CLOSE_CODES.goingAway, 'the coordinator is shutting down');
    });
  };
  server.on('upgrade', onUpgrade);

  return {
    async close() {
      closing = true;
      server.off('upgrade', onUpgrade);
      const all = [...connections];
      for (const c of all) c.close(CLOSE_CODES.goingAway, 'the coordinator is shutting down');
      await Promise.all(all.map((c) => c.closed));
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}

interface Registry {
  /** This connection now speaks for the worker; an older one for the same worker is closed. */
  claim(conn: WorkerConnection, workerId: string): void;
  release(conn: WorkerConnection): void;
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

const REASONS: Record<number, string> = { 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 503: 'Service Unavailable' };

/** Answers an upgrade request with a plain HTTP error and closes the socket. */
function refuse(socket: Duplex, err: GafferError): void {
  const body = JSON.stringify({ error: err.toJSON() });
  const head = [
    `HTTP/1.1 ${err.status} ${REASONS[err.status] ?? 'Error'}`,
    'Connection: close',
    'Content-Type: application/json; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
  ];
  if (err.status === 401) head.push('WWW-Authenticate: Bearer');
  socket.once('finish', () => socket.destroy());
  socket.end(`${head.join('\r\n')}\r\n\r\n${body}`);
}

type ConnState = 'hello' | 'attaching' | 'open' | 'closed';

/** Queues one reply of the frame being handled: it is sent once the replies to every earlier frame are out. */
type Reply = (send: () => void) => void;

/** One worker's WebSocket: parses frames, runs them in arrival order against the session, sends answers. */
class WorkerConnection {
  workerId: string | null = null;
  /** The name the worker said hello with, for the log. */
  private workerName: string | null = null;
  readonly closed: Promise<void>;
  private state: ConnState = 'hello';
  private session: WorkerSession | null = null;
  private violations = 0;
  private chain: Promise<void> = Promise.resolve();
  /** Settles once every frame read so far is handled and its replies are sent; the next frame's replies wait for it. */
  private replied: Promise<void> = Promise.resolve();
  /** True when no frame waits in `chain`: frames of an open connection may then start at once. */
  private chainIdle = true;
  /** Frames started at once and not yet finished. */
  private readonly inFlight = new Set<Promise<void>>();
  /** True while the socket is corked until the next turn of the event loop. */
  private corked = false;
  private queued = 0;
  private paused = false;
  /** Frames for the worker made before welcome went out: sent right after it. */
  private outbox: CoordinatorFrame[] = [];
  private lastHeardAt: number;
  private timer: TimerHandle | null = null;
  private readonly ws: WebSocket;
  private readonly coordinator: Coordinator;
  private readonly settings: Settings;
  private readonly log: Log;
  private readonly registry: Registry;

  /** The operator the connection's token names (null without tokens): only its worker records may be claimed here. */
  private readonly operator: string | null;

  constructor(ws: WebSocket, coordinator: Coordinator, settings: Settings, log: Log, registry: Registry, operator: string | null) {
    this.operator = operator;
    this.ws = ws;
    this.coordinator = coordinator;
    this.settings = settings;
    this.log = log;
    this.registry = registry;
    this.lastHeardAt = coordinator.clock.now();
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => void this.onClose(code, reason.toString()).finally(resolve));
    });
    ws.on('error', (err) => this.log.warn({ err }, 'worker socket error'));
    ws.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    this.armTimer(settings.helloTimeoutMs);
  }

  /** A method, not a field read, so that TypeScript does not narrow it across awaits. */
  isClosed(): boolean {
    return this.state === 'closed';
  }

  close(code: number, reason: string): void {
    if (this.ws.readyState === this.ws.CLOSED) return;
    if (this.ws.readyState !== this.ws.CLOSING) this.ws.close(code, reason);
    const cut = setTimeout(() => this.ws.terminate(), CLOSE_GRACE_MS);
    cut.unref();
    void this.closed.then(() => clearTimeout(cut));
  }

  // ---- Timers: hello within helloTimeoutMs, then something at least every idleTimeoutMs ----

  private armTimer(delayMs: number): void {
    const clock = this.coordinator.clock;
    if (this.timer) clock.clearTimeout(this.timer);
    this.timer = clock.setTimeout(() => this.onTimer(), delayMs);
  }

  private onTimer(): void {
    this.timer = null;
    if (this.state === 'closed') return;
    if (this.state === 'hello') {
      this.sendError(new GafferError('PROTOCOL_ERROR', `no hello within ${this.settings.helloTimeoutMs} ms`));
      this.close(CLOSE_CODES.timeout, 'no hello in time');
      return;
    }
    const silentMs = this.coordinator.clock.now() - this.lastHeardAt;
    if (silentMs >= this.settings.idleTimeoutMs) {
      this.close(CLOSE_CODES.timeout, `nothing heard for ${silentMs} ms`);
      return;
    }
    this.armTimer(this.settings.idleTimeoutMs - silentMs);
  }

  // ---- Reading ----

  private onMessage(data: RawData, isBinary: boolean): void {
    if (this.state === 'closed') return;
    this.lastHeardAt = this.coordinator.clock.now();
    let frame: WorkerFrame;
    try {
      frame = parseWorkerFrame(toBuffer(data), isBinary, this.settings.frameMaxBytes);
    } catch (err) {
      // Answered after the replies to the frames before it, as the docs promise.
      this.enqueue((reply) => {
        reply(() => this.violation(err));
        return Promise.resolve();
      });
      return;
    }
    this.enqueue((reply) => this.handle(frame, reply));
  }

  /**
   * Runs a frame; stops reading the socket while too many are unfinished.
   * Until the connection is open (hello handled, and the frames that came
   * meanwhile), frames run one after another. After that each frame starts at
   * once, in the order it arrived, without waiting for the one before to
   * finish: the store call each makes is queued in that order (the embedded
   * store commits the queued calls together, one fsync for many results), so
   * the order of a worker's reports is kept while their commits overlap.
   * A frame's replies are held until those of every frame before it are out.
   */
  private enqueue(task: (reply: Reply) => Promise<void>): void {
    this.queued++;
    if (this.queued > this.settings.frameQueueMax && !this.paused) {
      this.paused = true;
      this.ws.pause();
    }
    const before = this.replied;
    let done!: () => void;
    this.replied = new Promise((resolve) => (done = resolve));
    const replies: (() => void)[] = [];
    const run = (): Promise<void> =>
      task((send) => void replies.push(send))
        .catch((err: unknown) => this.log.error({ err }, 'handling a worker frame failed'))
        .then(() => before)
        .then(() => {
          for (const send of replies) send();
        })
        .finally(() => {
          done();
          this.queued--;
          if (this.paused && this.queued <= this.settings.frameQueueMax / 2) {
            this.paused = false;
            this.ws.resume();
          }
        });
    if (this.state === 'open' && this.chainIdle) {
      const p = run();
      this.inFlight.add(p);
      void p.finally(() => this.inFlight.delete(p));
      return;
    }
    this.chainIdle = false;
    const tail = this.chain.then(run);
    this.chain = tail;
    void tail.finally(() => {
      if (this.chain === tail) this.chainIdle = true;
    });
  }

  private async handle(frame: WorkerFrame, reply: Reply): Promise<void> {
    // Frames read before the connection closed still count (a worker reports, then hangs up): the session
    // stays attached until they are handled. Only a hello still waiting is dropped.
    if (this.isClosed() && !this.session) return;
    if (this.state === 'hello') {
      if (frame.type !== 'hello') return reply(() => this.violation(new FrameError(new GafferError('PROTOCOL_ERROR', 'send hello first'), frame.type)));
      return this.hello(frame);
    }
    const session = this.session;
    if (frame.type === 'hello' || !session) {
      return reply(() => this.violation(new FrameError(new GafferError('PROTOCOL_ERROR', 'hello was already sent on this connection'), 'hello')));
    }
    const error = (err: unknown, type: string, attemptId?: string): void => reply(() => this.sendError(asGafferError(err, this.log), type, attemptId));
    switch (frame.type) {
      case 'heartbeat':
        try {
          const res = await session.heartbeat(frame.attempts);
          if (res.revoked.length > 0) reply(() => this.send({ type: 'revoke', attemptIds: res.revoked, reason: 'STALE_LEASE' }));
        } catch (err) {
          // Naming more attempts than the worker's slots allow is the worker's fault: a violation.
          if (isGafferError(err, 'INVALID_INPUT')) {
            const e = err;
            return reply(() => this.violation(new FrameError(e, 'heartbeat')));
          }
          error(err, 'heartbeat');
        }
        return;
      case 'progress':
        try {
          await session.progress(ref(frame), frame.progress);
        } catch (err) {
          if (isGafferError(err, 'STALE_LEASE') || isGafferError(err, 'ATTEMPT_NOT_FOUND')) {
            const code = err.code;
            reply(() => this.send({ type: 'revoke', attemptIds: [frame.attemptId], reason: code }));
          } else {
            error(err, 'progress', frame.attemptId);
          }
        }
        return;
      case 'complete':
        return this.report(frame.attemptId, () => session.complete(ref(frame), frame.result, frame.trace, frame.output), reply);
      case 'fail':
        return this.report(frame.attemptId, () => session.fail(ref(frame), frame.error, frame.retryable ?? true), reply);
      case 'keys':
        try {
          await session.keys({ hold: frame.hold ?? [], release: frame.release ?? [] });
        } catch (err) {
          error(err, 'keys');
        }
        return;
      case 'drain':
        try {
          await session.drain();
        } catch (err) {
          error(err, 'drain');
        }
        return;
      case 'published': {
        const { type: _type, ...answer } = frame;
        try {
          await session.published(answer);
          reply(() => this.send({ type: 'recorded', attemptId: frame.attemptId, ok: true }));
        } catch (err) {
          const e = asGafferError(err, this.log);
          reply(() => this.send({ type: 'recorded', attemptId: frame.attemptId, ok: false, error: { code: e.code, message: e.message } }));
        }
        return;
      }
    }
  }

  private async hello(frame: HelloFrame): Promise<void> {
    if (frame.protocol !== PROTOCOL_VERSION) {
      this.sendError(new FrameError(new GafferError('PROTOCOL_ERROR', `this coordinator speaks protocol ${PROTOCOL_VERSION}, not ${frame.protocol}`), 'hello'));
      this.close(CLOSE_CODES.unsupportedProtocol, `protocol ${PROTOCOL_VERSION} only`);
      return;
    }
    this.state = 'attaching';
    const link: WorkerLink = {
      assign: (assignments) => this.sendAssignments(assignments),
      revoke: (attemptIds, reason) => this.send({ type: 'revoke', attemptIds, reason }),
      publish: (o) => this.send({ type: 'publish', jobId: o.jobId, attemptId: o.attemptId, queue: o.queue }),
      discard: (refs) => this.send({ type: 'discard', attempts: refs.map((r) => ({ jobId: r.jobId, attemptId: r.attemptId })) }),
    };
    let session: WorkerSession;
    try {
      session = await this.coordinator.attachWorker(frame.worker, link, this.operator);
    } catch (err) {
      if (this.isClosed()) return;
      // Another operator's worker id: refused for good, and whoever holds the id now keeps it.
      if (isGafferError(err, 'WORKER_ID_TAKEN')) {
        this.log.warn({ workerId: (err.details as { workerId?: string } | undefined)?.workerId, operator: this.operator }, 'refused a hello naming another operator\'s worker');
        this.sendError(err, 'hello');
        this.close(CLOSE_CODES.identityRefused, 'this worker id belongs to another operator');
        return;
      }
      this.state = 'hello';
      // A hello the coordinator refuses is a violation; one it failed to handle (5xx: busy, internal) is not the worker's fault.
      if (isGafferError(err) && err.status < 500) return this.violation(new FrameError(err, 'hello'));
      this.sendError(asGafferError(err, this.log), 'hello');
      // The store is away or busy: the worker reconnects after its backoff (to another coordinator, if it knows one)
      // rather than wait here for a welcome that cannot come.
      if (isGafferError(err, 'NOT_READY') || isGafferError(err, 'STORE_BUSY')) this.close(CLOSE_CODES.tryAgainLater, 'the store is unavailable; try again later');
      return;
    }
    this.session = session;
    this.workerId = session.workerId;
    this.workerName = frame.worker.name;
    if (this.isClosed()) {
      await session.detach();
      return;
    }
    this.registry.claim(this, session.workerId);
    let resumed: { extended: string[]; revoked: string[] };
    try {
      // Only the attempts named are extended: an attempt the worker no longer mentions runs out its lease.
      // (No attempts, no heartbeat: attaching already marked the worker seen, before anything was claimed for it.)
      const named = frame.attempts ?? [];
      resumed = named.length > 0 ? await session.heartbeat(named) : { extended: [], revoked: [] };
    } catch (err) {
      this.sendError(asGafferError(err, this.log), 'hello');
      // More attempts than the worker's slots allow is the worker's fault, anything else the coordinator's.
      if (isGafferError(err, 'INVALID_INPUT')) this.close(CLOSE_CODES.protocolViolations, 'hello named more attempts than its slots allow');
      else this.close(1011, 'could not resume the attempts');
      return;
    }
    if (this.isClosed()) return;
    this.state = 'open';
    this.log.info({ name: this.workerName, workerId: session.workerId, resumed: resumed.extended.length, revoked: resumed.revoked.length }, 'worker attached');
    this.sendNow({
      type: 'welcome',
      protocol: PROTOCOL_VERSION,
      workerId: session.workerId,
      heartbeatIntervalMs: this.settings.heartbeatIntervalMs,
      frameMaxBytes: this.settings.frameMaxBytes,
      resumed: resumed.extended,
      revoked: resumed.revoked,
    });
    for (const f of this.outbox.splice(0)) this.sendNow(f);
    this.armTimer(this.settings.idleTimeoutMs);
  }

  private async report(attemptId: string, run: () => Promise<unknown>, reply: Reply): Promise<void> {
    try {
      await run();
      reply(() => this.send({ type: 'ack', attemptId, ok: true }));
    } catch (err) {
      const e = asGafferError(err, this.log);
      reply(() => this.send({ type: 'ack', attemptId, ok: false, error: { code: e.code, message: e.message } }));
    }
  }

  // ---- Violations and errors ----

  private violation(err: unknown): void {
    if (this.state === 'closed') return;
    const e = err instanceof FrameError ? err : new FrameError(asGafferError(err, this.log));
    this.violations++;
    this.sendError(e, e.frame, e.attemptId);
    if (this.violations > this.settings.protocolViolationsMax) {
      this.log.warn({ workerId: this.workerId, violations: this.violations }, 'closing a worker connection for protocol violations');
      this.close(CLOSE_CODES.protocolViolations, 'too many protocol violations');
    }
  }

  private sendError(err: GafferError, frame?: string, attemptId?: string): void {
    const out: ErrorFrame = { type: 'error', code: err.code, message: err.message };
    if (frame !== undefined) out.frame = frame;
    if (attemptId !== undefined) out.attemptId = attemptId;
    // Errors answer the frame just read, so they go out at once, even before welcome.
    this.sendNow(out);
  }

  // ---- Writing ----

  /** Splits a batch so that no assign frame is larger than frameMaxBytes. */
  private sendAssignments(assignments: Assignment[]): void {
    const envelope = 40;
    let batch: Assignment[] = [];
    let bytes = envelope;
    for (const a of assignments) {
      const size = Buffer.byteLength(JSON.stringify(a)) + 1;
      if (batch.length > 0 && bytes + size > this.settings.frameMaxBytes) {
        this.send({ type: 'assign', assignments: batch });
        batch = [];
        bytes = envelope;
      }
      batch.push(a);
      bytes += size;
    }
    if (batch.length > 0) this.send({ type: 'assign', assignments: batch });
  }

  /** Sends now, or after welcome when the connection is still saying hello. */
  private send(frame: CoordinatorFrame): void {
    if (this.state === 'open') this.sendNow(frame);
    else if (this.state === 'attaching') this.outbox.push(frame);
  }

  private sendNow(frame: CoordinatorFrame): void {
    if (this.ws.readyState !== this.ws.OPEN) return;
    this.corkUntilNextTurn();
    this.ws.send(JSON.stringify(frame), (err) => {
      if (err) this.log.debug({ err }, 'a frame to a worker was not sent');
    });
    const buffered = this.ws.bufferedAmount;
    if (buffered > this.settings.sendBufferMaxBytes) {
      this.log.warn({ workerId: this.workerId, bufferedBytes: buffered, limitBytes: this.settings.sendBufferMaxBytes }, 'closing a worker connection that does not read its frames');
      this.close(CLOSE_CODES.slowReader, 'the worker does not read its frames');
    }
  }

  /**
   * Frames sent in one turn of the event loop (the acks of one group commit,
   * say) leave in one write to the socket rather than one system call each.
   * `ws` keeps its TCP socket in `_socket`; without one, frames go as they are.
   */
  private corkUntilNextTurn(): void {
    if (this.corked) return;
    const socket = (this.ws as unknown as { _socket?: { cork(): void; uncork(): void; destroyed?: boolean } })._socket;
    if (!socket || typeof socket.cork !== 'function') return;
    this.corked = true;
    socket.cork();
    setImmediate(() => {
      this.corked = false;
      if (!socket.destroyed) socket.uncork();
    });
  }

  private async onClose(code: number, reason: string): Promise<void> {
    this.state = 'closed';
    this.outbox = [];
    if (this.timer) this.coordinator.clock.clearTimeout(this.timer);
    this.timer = null;
    this.registry.release(this);
    this.log.info({ name: this.workerName, workerId: this.workerId, code, reason }, 'worker disconnected');
    // Leases stay: the worker has its heartbeat timeout to come back and present them.
    await this.chain;
    await Promise.all([...this.inFlight]);
    if (this.session) await this.session.detach().catch((err: unknown) => this.log.error({ err }, 'detaching a worker failed'));
  }
}

function ref(frame: { attemptId: string; lease: string }): LeaseRef {
  return { attemptId: frame.attemptId, lease: frame.lease };
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

/** Store and validation errors pass through; anything else is INTERNAL (and logged, as it is a bug). */
function asGafferError(err: unknown, log: Log): GafferError {
  if (isGafferError(err)) return err;
  log.error({ err }, 'unexpected error while handling a worker frame');
  return new GafferError('INTERNAL', 'the coordinator could not handle this frame');
}
