// The SDK worker: connects to a coordinator over the worker protocol
// (docs/worker-protocol.md), runs the attempts it is given with a handler per
// queue, and reports them.
//
//   const worker = new Worker({
//     urls: ['ws://coord-a:7070', 'ws://coord-b:7070'], token, name: 'prover-1',
//     cores: 32, memoryMb: 128_000, gpuIds: [0, 1],
//     queues: {
//       'prove.inner': { slots: 2, module: './prove.ts' },          // CPU-bound: on worker threads
//       'notify':      { slots: 8, handler: async (p) => send(p) },  // I/O-bound: on the main thread
//       'seal.pc2':    { slots: 2, exec: { command: './pc2 --gpu' } }, // any program: a child process
//     },
//   });
//   await worker.start();
//
// Threads: the socket, the heartbeats and `handler` functions run on the main
// thread; a `module` handler runs on a worker thread (threads.ts) and an
// `exec` command in a child process (exec.ts), so CPU-bound work never delays
// a heartbeat. A `handler` function must not block the main thread for long.
//
// Connections: the worker tries its URLs in turn. When a socket drops it
// reconnects to the next URL after a backoff (doubling from
// reconnectBaseDelayMs to reconnectMaxDelayMs, with jitter), says hello with
// the id it was given and every attempt it still runs or has not had
// acknowledged, and carries on with those the coordinator says are still its
// own. Attempts keep running while it is disconnected; their reports wait.
//
// Shutdown: drain() (and SIGTERM/SIGINT, unless handleSignals is false) tells
// the coordinator to send nothing new, waits for the running attempts up to
// drainTimeoutMs, gives up the rest (reported as retryable failures), closes,
// and with a signal exits the process. stop() gives up at once.
import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import { pino, type Logger } from 'pino';
import { WebSocket, type RawData } from 'ws';
import { exceedsJsonDepth } from '../types/json-depth.ts';
import { LIMITS, PROTOCOL_DEFAULTS, WORKER_DEFAULTS } from '../types/limits.ts';
import type { Assignment, Json, Labels, Trace } from '../types/model.ts';
import {
  CLOSE_CODES,
  PROTOCOL_VERSION,
  type AckFrame,
  type CompleteFrame,
  type CoordinatorFrame,
  type ErrorFrame,
  type FailFrame,
  type HelloFrame,
  type LeaseRefFrame,
  type WelcomeFrame,
  type WorkerFrame,
} from '../types/protocol.ts';
import { checkQueues, jsonBytes, outDirOf, rawText, resultOutcome, workerUrl, type Outcome, type QueueConfig } from './checks.ts';
import { runExec } from './exec.ts';
import { queueOutputs, type Outputs } from './outputs.ts';
import type { PublishBounds } from './publish/publisher.ts';
import { failureOf, type HandlerContext } from './handler.ts';
import { savedWorkerId, saveWorkerId } from './state-file.ts';
import { noResend, RETRY_REPORT_CODES, scheduleResend, StoppingAttempts, type Resend } from './report-retry.ts';
import { ConnectLog } from './connect-log.ts';
import { ThreadPool } from './threads.ts';
import { normalizeTrace } from './trace.ts';

export { workerUrl, type QueueConfig };

export interface WorkerOptions {
  /** Coordinator URLs, tried in turn: ws://, wss://, http:// or https://; the path defaults to /v1/worker. */
  urls: string | readonly string[];
  /** Sent as Authorization: Bearer on the upgrade request; a token with the worker scope. */
  token?: string;
  name: string;
  /** A stable id to start with; by default the one saved in stateFile, else the coordinator gives one in the first welcome. */
  id?: string;
  /**
   * A file that keeps the worker's id across restarts (state-file.ts): read by start(), written when a welcome
   * gives an id it does not hold. A saved id refused as another operator's (WORKER_ID_TAKEN, close 4403) is
   * logged as an error and dropped: the worker says hello without an id, and the fresh one replaces it.
   */
  stateFile?: string;
  labels?: Labels;
  cores?: number;
  memoryMb?: number;
  /** GPU ids this worker may hand to attempts; each attempt learns its own in assignment.gpuIds. */
  gpuIds?: number[];
  /** Affinity keys held from the start. */
  keys?: string[];
  queues: Record<string, QueueConfig>;
  /** Heartbeat at most this far apart, even if the coordinator allows longer. */
  heartbeatIntervalMs?: number;
  reconnectBaseDelayMs?: number;
  reconnectMaxDelayMs?: number;
  connectTimeoutMs?: number;
  drainTimeoutMs?: number;
  abortGraceMs?: number;
  progressMinIntervalMs?: number;
  reportResendBaseDelayMs?: number;
  /** Drain on SIGTERM and SIGINT, then exit the process (a second signal gives up at once). Default true. */
  handleSignals?: boolean;
  logger?: Logger;
  /** Bounds of publishing (PUBLISH_DEFAULTS when left out): concurrency, tries, backoff, files. */
  publishBounds?: Partial<PublishBounds>;
  /** An output neither published nor discarded within this long is removed (PUBLISH_DEFAULTS.outputKeepMaxMs). */
  outputKeepMaxMs?: number;
  /** Uniform in [0, 1), for the reconnect jitter. */
  random?: () => number;
}

export interface WorkerStats {
  /** Results the coordinator accepted. */
  completed: number;
  /** Failures the coordinator accepted. */
  failed: number;
  /** Reports refused (STALE_LEASE and the like): another attempt owns the job now. */
  stale: number;
  /** Attempts stopped because the coordinator revoked them (cancel, lost lease, timeout). */
  revoked: number;
}

export interface WorkerEvents {
  /** welcome arrived: the worker is connected and may be sent work. */
  connected: [{ url: string; workerId: string; resumed: string[]; revoked: string[] }];
  disconnected: [{ url: string; code: number; reason: string }];
  /** The coordinator refused the upgrade (401 or 403: a missing or wrong token). The worker keeps retrying. */
  refused: [{ url: string; status: number }];
  assigned: [Assignment];
  /** An exec attempt's child process started. */
  spawned: [{ attemptId: string; pid: number }];
  /** A handler reported progress (before throttling). */
  progress: [{ attemptId: string; value: Json }];
  /** An attempt's handler ended here; its report goes to the coordinator next. */
  finished: [{ attemptId: string; jobId: string; ok: boolean; error?: { code: string; message: string } }];
  /** The coordinator answered a report. */
  ack: [AckFrame];
  /** Attempts stopped: revoked by the coordinator, or given up by this worker. */
  aborted: [{ attemptId: string; reason: string }];
  /** The runner of an attempt is done, aborted or not: its thread is free, its child process gone. */
  ended: [{ attemptId: string; aborted: boolean }];
  /** The coordinator refused a frame (a bug in the worker, or a version mismatch). */
  protocolError: [ErrorFrame];
  draining: [];
  stopped: [];
}

type Phase = 'new' | 'running' | 'draining' | 'stopped';

interface Entry {
  assignment: Assignment;
  abort: AbortController;
  /** The outcome, once the run ended (a complete with its trace, if any): sent, and sent again after a reconnect, until acknowledged. */
  report: CompleteFrame | FailFrame | null;
  /**
   * Settles when the runner does. Exec children and threads always settle after an abort (SIGKILL,
   * terminate); a main-thread handler settles only if it honours its signal, so shutdown does not wait for it.
   */
  settled: Promise<void>;
  /** True for exec and module runners: shutdown waits for them so no child or thread outlives the worker. */
  isolated: boolean;
  resend: Resend;
  progress: { value: Json | undefined; timer: NodeJS.Timeout | null; lastSentAt: number };
  /** Where the attempt left its output, for a queue with a publisher: the exec runner's, or the handler's (ctx.setOutputDir). */
  outputDir: string | null;
}

/** Ack error codes of a refused trace (on a complete that carries one): the result goes again without it. */
const TRACE_REFUSED_CODES = new Set(['INVALID_INPUT', 'UNKNOWN_FIELD']);
/**
 * Ack error codes of a refused result (a complete without a trace): sending it
 * again cannot succeed, so the attempt is failed instead, with no retry.
 */
const RESULT_REFUSED_CODES = new Set(['INVALID_INPUT', 'UNKNOWN_FIELD', 'PAYLOAD_TOO_LARGE']);
/** Floor on the heartbeat period, whatever the jobs ask. */
const HEARTBEAT_MIN_MS = 10;
/** A coordinator silent (no frame, no pong) for this many welcome heartbeat intervals is taken for gone. */
const SILENT_INTERVALS = 3;
/** On shutdown, how long to wait for the closing handshake before cutting the socket. */
const CLOSE_GRACE_MS = 1000;

export class Worker extends EventEmitter<WorkerEvents> {
  readonly stats: WorkerStats = { completed: 0, failed: 0, stale: 0, revoked: 0 };
  private readonly options: WorkerOptions;
  private readonly urls: string[];
  private readonly log: Logger;
  private readonly connectLog: ConnectLog;
  private readonly random: () => number;
  private readonly keys: Set<string>;
  private readonly pools = new Map<string, ThreadPool>();
  private readonly running = new Map<string, Entry>();
  /** The outputs held for publishing; null when no queue has a publisher. */
  private readonly outputs: Outputs | null;
  private phase: Phase = 'new';
  private workerId: string | undefined;
  /** The id the state file holds for this worker's name. */
  private savedId: string | undefined;
  private ws: WebSocket | null = null;
  private welcomed = false;
  private urlIndex = 0;
  private failures = 0;
  private welcomeIntervalMs: number = PROTOCOL_DEFAULTS.heartbeatIntervalMs;
  private lastHeardAt = 0;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private nextBeatAt = Infinity;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private connectTimer: NodeJS.Timeout | null = null;
  private startWaiters: { resolve: () => void; reject: (e: unknown) => void }[] = [];
  private idleWaiters: (() => void)[] = [];
  private draining: Promise<void> | null = null;
  private readonly halting = new StoppingAttempts();
  private stopping: Promise<void> | null = null;
  private readonly onSignal = (sig: NodeJS.Signals): void => this.signalled(sig);

  constructor(options: WorkerOptions) {
    super();
    this.options = options;
    this.urls = (typeof options.urls === 'string' ? [options.urls] : [...options.urls]).map(workerUrl);
    if (this.urls.length === 0) throw new TypeError('a worker needs at least one coordinator URL');
    checkQueues(options.queues);
    this.log = (options.logger ?? pino({ level: 'silent' })).child({ component: 'worker', name: options.name });
    this.connectLog = new ConnectLog(this.log);
    this.random = options.random ?? Math.random;
    this.keys = new Set(options.keys ?? []);
    this.workerId = options.id;
    this.outputs = queueOutputs(options, this.log, (frame) => this.send(frame), this.random);
  }

  /** The id the coordinator knows this worker by (after the first welcome). */
  get id(): string | undefined {
    return this.workerId;
  }

  get connected(): boolean {
    return this.welcomed;
  }

  /** Attempts running, or finished and not yet acknowledged. */
  get activeAttempts(): number {
    return this.running.size;
  }

  /** Loads the handler modules, then connects; resolves at the first welcome. */
  async start(): Promise<void> {
    if (this.phase !== 'new') throw new Error('start() runs once per Worker');
    this.phase = 'running';
    try {
      const file = this.options.stateFile;
      if (file !== undefined) this.savedId = savedWorkerId(file, this.options.name);
      this.workerId ??= this.savedId;
      for (const [queue, config] of Object.entries(this.options.queues)) {
        if (!('module' in config)) continue;
        const pool = new ThreadPool({
          module: config.module,
          size: config.slots,
          abortGraceMs: this.options.abortGraceMs ?? WORKER_DEFAULTS.abortGraceMs,
          ...(config.resourceLimits ? { resourceLimits: config.resourceLimits } : {}),
        });
        this.pools.set(queue, pool);
        await pool.ready();
      }
    } catch (err) {
      await this.stop();
      throw err;
    }
    if (this.options.handleSignals ?? true) {
      process.on('SIGTERM', this.onSignal);
      process.on('SIGINT', this.onSignal);
    }
    const first = new Promise<void>((resolve, reject) => this.startWaiters.push({ resolve, reject }));
    this.connect();
    return first;
  }

  /** Stops taking work, lets running attempts finish for up to drainTimeoutMs, gives up the rest, closes. */
  drain(): Promise<void> {
    if (this.stopping) return this.stopping;
    if (this.draining) return this.draining;
    this.phase = 'draining';
    this.emit('draining');
    this.send({ type: 'drain' });
    const boundMs = this.options.drainTimeoutMs ?? WORKER_DEFAULTS.drainTimeoutMs;
    this.draining = (async () => {
      let timer: NodeJS.Timeout | null = null;
      await Promise.race([
        // Uploads under way finish too (within the same bound); outputs still waiting for a publish stay on disk.
        Promise.all([this.whenIdle(), this.outputs?.whenIdle()]),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, boundMs);
        }),
      ]);
      if (timer) clearTimeout(timer);
      await this.stop('the drain bound passed');
    })();
    return this.draining;
  }

  /** Gives up every running attempt (reported as a retryable failure when connected) and closes. */
  stop(reason = 'the worker stopped'): Promise<void> {
    if (this.stopping) return this.stopping;
    this.phase = 'stopped';
    this.stopping = this.shutdown(reason);
    return this.stopping;
  }

  /** Tells the coordinator this worker now holds these affinity keys (kept across reconnects). */
  holdKeys(keys: readonly string[]): void {
    for (const k of keys) this.keys.add(k);
    this.send({ type: 'keys', hold: [...keys] });
  }

  releaseKeys(keys: readonly string[]): void {
    for (const k of keys) this.keys.delete(k);
    this.send({ type: 'keys', release: [...keys] });
  }

  // ---- Connection ----

  private connect(): void {
    if (this.phase === 'stopped') return;
    const url = this.urls[this.urlIndex % this.urls.length]!;
    const connectTimeoutMs = this.options.connectTimeoutMs ?? WORKER_DEFAULTS.connectTimeoutMs;
    const headers: Record<string, string> = this.options.token ? { authorization: `Bearer ${this.options.token}` } : {};
    const ws = new WebSocket(url, {
      headers,
      handshakeTimeout: connectTimeoutMs,
      maxPayload: PROTOCOL_DEFAULTS.frameHardMaxBytes,
      perMessageDeflate: false,
    });
    this.ws = ws;
    this.welcomed = false;
    const timedOut = { kind: 'error', code: 'HANDSHAKE_TIMEOUT', message: 'timed out' } as const;
    this.connectTimer = setTimeout(() => (this.connectLog.noteTrouble(timedOut), ws.terminate()), connectTimeoutMs);
    ws.on('open', () => this.sendHello(ws));
    ws.on('message', (data, isBinary) => this.onMessage(ws, data, isBinary));
    ws.on('pong', () => {
      this.lastHeardAt = Date.now();
    });
    ws.on('unexpected-response', (_req, res) => {
      this.connectLog.noteTrouble({ kind: 'status', status: res.statusCode ?? 0 });
      this.emit('refused', { url, status: res.statusCode ?? 0 });
      ws.terminate();
    });
    ws.on('error', (err: NodeJS.ErrnoException) => this.connectLog.noteTrouble({ kind: 'error', code: err.code ?? 'ERROR', message: err.message }));
    ws.on('close', (code, reason) => this.onClose(ws, url, code, reason.toString()));
  }

  private sendHello(ws: WebSocket): void {
    const o = this.options;
    const queues: Record<string, number> = {};
    for (const [q, c] of Object.entries(o.queues)) queues[q] = c.slots;
    const worker: HelloFrame['worker'] = { name: o.name, queues, keys: [...this.keys], host: hostname().slice(0, LIMITS.keyMaxChars), pid: process.pid };
    if (this.workerId !== undefined) worker.id = this.workerId;
    if (o.labels !== undefined) worker.labels = o.labels;
    if (o.cores !== undefined) worker.cores = o.cores;
    if (o.memoryMb !== undefined) worker.memoryMb = o.memoryMb;
    if (o.gpuIds !== undefined) worker.gpuIds = o.gpuIds;
    const hello: HelloFrame = { type: 'hello', protocol: PROTOCOL_VERSION, worker, attempts: this.refs() };
    ws.send(JSON.stringify(hello));
  }

  private onClose(ws: WebSocket, url: string, code: number, reason: string): void {
    if (this.ws !== ws) return;
    const wasWelcomed = this.welcomed;
    this.ws = null;
    this.welcomed = false;
    this.clearTimer('connectTimer');
    this.clearTimer('heartbeatTimer');
    this.nextBeatAt = Infinity;
    this.emit('disconnected', { url, code, reason });
    if (this.phase === 'stopped') return;
    if (code === CLOSE_CODES.superseded) {
      // Another process said hello with this worker's id: it speaks for the
      // worker now. Reconnecting would only take the connection back and forth.
      this.log.error({ url, workerId: this.workerId }, 'another connection took over this worker id; stopping');
      void this.stop('another connection took over this worker id');
      return;
    }
    if (code === CLOSE_CODES.identityRefused && this.options.id === undefined && this.savedId !== undefined && this.workerId === this.savedId) {
      // The saved id is another operator's (a copied state file, a changed token): a fresh id replaces it.
      this.log.error({ url, workerId: this.workerId, stateFile: this.options.stateFile }, 'the worker id saved in the state file belongs to another operator (WORKER_ID_TAKEN); saying hello without it to get a fresh id, which replaces it in the file');
      this.workerId = undefined;
    } else if (code === CLOSE_CODES.identityRefused) {
      // The id belongs to another operator's worker: no retry can succeed with it.
      this.log.error({ url, workerId: this.workerId }, 'the coordinator refused this worker id: another operator owns it; stopping');
      void this.stop('the worker id belongs to another operator');
      return;
    }
    if (wasWelcomed) this.connectLog.lost(url, code, reason, this.running.size);
    else this.connectLog.failed(url, code);
    if (wasWelcomed) this.failures = 0;
    const baseMs = this.options.reconnectBaseDelayMs ?? WORKER_DEFAULTS.reconnectBaseDelayMs;
    const maxMs = this.options.reconnectMaxDelayMs ?? WORKER_DEFAULTS.reconnectMaxDelayMs;
    const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(this.failures, 30));
    const delayMs = ceiling / 2 + (this.random() * ceiling) / 2;
    this.failures++;
    this.urlIndex++;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this.connect();
    }, delayMs);
  }

  // ---- Frames from the coordinator ----

  private onMessage(ws: WebSocket, data: RawData, isBinary: boolean): void {
    if (this.ws !== ws) return;
    this.lastHeardAt = Date.now();
    let frame: CoordinatorFrame;
    try {
      frame = JSON.parse(isBinary ? '' : rawText(data)) as CoordinatorFrame;
    } catch {
      this.log.warn('the coordinator sent a frame that is not JSON; ignored');
      return;
    }
    switch (frame.type) {
      case 'welcome':
        return this.onWelcome(frame);
      case 'assign':
        for (const a of frame.assignments) this.onAssign(a);
        this.rescheduleHeartbeat();
        return;
      case 'revoke':
        for (const id of frame.attemptIds) {
          if (this.running.has(id)) this.stats.revoked++;
          this.abortEntry(id, frame.reason);
        }
        return;
      case 'ack':
        return this.onAck(frame);
      case 'publish':
        return this.outputs?.onPublish(frame);
      case 'discard':
        return this.outputs?.onDiscard(frame);
      case 'recorded':
        return this.outputs?.onRecorded(frame);
      case 'error':
        this.log.warn({ code: frame.code, message: frame.message, frame: frame.frame }, 'the coordinator refused a frame');
        this.emit('protocolError', frame);
        // A coordinator that does not take traces refuses the whole complete: the result goes again without it.
        if (frame.frame === 'complete' && frame.attemptId !== undefined) this.resendWithoutTrace(frame.attemptId, frame.message);
        return;
      default:
        // A frame type this worker does not know: newer coordinators may add some; ignore it.
        return;
    }
  }

  private onWelcome(frame: WelcomeFrame): void {
    this.clearTimer('connectTimer');
    this.welcomed = true;
    this.workerId = frame.workerId;
    if (this.options.stateFile !== undefined && frame.workerId !== this.savedId) this.saveId(this.options.stateFile, frame.workerId);
    this.welcomeIntervalMs = frame.heartbeatIntervalMs;
    this.failures = 0;
    this.connectLog.connected();
    for (const id of frame.revoked) this.abortEntry(id, 'not resumed: the lease was lost while disconnected');
    // Reports made while disconnected (or not acknowledged before the drop) go now.
    for (const e of this.running.values()) if (e.report) this.send(e.report);
    this.outputs?.resend();
    if (this.phase === 'draining') this.send({ type: 'drain' });
    this.lastHeardAt = Date.now();
    this.scheduleHeartbeat();
    const url = this.urls[this.urlIndex % this.urls.length]!;
    this.log.info({ url, workerId: frame.workerId, resumed: frame.resumed.length, revoked: frame.revoked.length }, 'connected');
    this.emit('connected', { url, workerId: frame.workerId, resumed: frame.resumed, revoked: frame.revoked });
    for (const w of this.startWaiters.splice(0)) w.resolve();
  }

  private onAck(frame: AckFrame): void {
    const e = this.running.get(frame.attemptId);
    if (!frame.ok && TRACE_REFUSED_CODES.has(frame.error?.code ?? '') && this.resendWithoutTrace(frame.attemptId, frame.error?.message ?? '')) {
      // The trace was refused, and with it the result (not applied): the result goes again alone.
      this.emit('ack', frame);
      return;
    }
    if (e?.report?.type === 'complete' && !frame.ok && RESULT_REFUSED_CODES.has(frame.error?.code ?? '')) {
      // The result itself was refused (too deep, too large): the attempt fails rather than resend what cannot land.
      const { attemptId, lease } = e.report;
      const message = `the coordinator refused the result (${frame.error!.code}): ${frame.error!.message}`.slice(0, LIMITS.errorMessageMaxChars);
      this.log.warn({ attemptId, code: frame.error!.code }, 'the coordinator refused a result; failing the attempt');
      e.report = { type: 'fail', attemptId, lease, error: { code: 'HANDLER_ERROR', message }, retryable: false };
      this.dropOutput(e);
      this.send(e.report);
      this.emit('ack', frame);
      return;
    }
    if (e?.report && !frame.ok && RETRY_REPORT_CODES.has(frame.error?.code ?? '') && this.scheduleResend(e, frame.error?.code ?? '')) {
      // Not applied: the report goes again with a heartbeat, until it lands or the lease is lost.
      this.emit('ack', frame);
      return;
    }
    if (e?.report) {
      // A result refused for good is never accepted: its output goes.
      if (!frame.ok) this.dropOutput(e);
      if (!frame.ok) this.stats.stale++;
      else if (e.report.type === 'complete') this.stats.completed++;
      else this.stats.failed++;
      this.running.delete(frame.attemptId);
      this.checkIdle();
    }
    this.emit('ack', frame);
  }

  private saveId(file: string, id: string): void {
    try {
      saveWorkerId(file, this.options.name, id);
      this.savedId = id;
    } catch (err) {
      this.log.error({ err, stateFile: file, workerId: id }, 'could not save the worker id in the state file: a restart will get a new id');
    }
  }

  private scheduleResend(e: Entry, code: string): boolean {
    const baseDelayMs = this.options.reportResendBaseDelayMs ?? WORKER_DEFAULTS.reportResendBaseDelayMs;
    if (scheduleResend(e.resend, code, { baseDelayMs, internalMax: WORKER_DEFAULTS.reportInternalResendsMax }, Date.now())) return true;
    this.log.error({ attemptId: e.assignment.attemptId, internalAcks: e.resend.internalAcks }, 'the coordinator failed to apply this report again and again; giving the attempt up');
    return false;
  }

  /** Sends a complete again without its trace, once; false when there was no trace to drop. */
  private resendWithoutTrace(attemptId: string, why: string): boolean {
    const report = this.running.get(attemptId)?.report;
    if (report?.type !== 'complete' || report.trace === undefined || report.trace === null) return false;
    this.log.warn({ attemptId, why }, 'the coordinator refused the trace of a result; sending the result without it');
    delete report.trace;
    this.send(report);
    return true;
  }

  // ---- Running attempts ----

  private onAssign(a: Assignment): void {
    if (this.running.has(a.attemptId)) return;
    const entry: Entry = {
      assignment: a,
      abort: new AbortController(),
      report: null,
      settled: Promise.resolve(),
      isolated: false,
      resend: noResend(),
      progress: { value: undefined, timer: null, lastSentAt: 0 },
      outputDir: null,
    };
    this.running.set(a.attemptId, entry);
    this.emit('assigned', a);
    const config = this.options.queues[a.queue];
    if (this.phase !== 'running') {
      this.finish(entry, { ok: false, code: 'WORKER_DRAINING', message: 'the worker is draining and takes no new work', retryable: true });
    } else if (!config) {
      this.finish(entry, { ok: false, code: 'HANDLER_ERROR', message: `this worker has no handler for queue ${a.queue}`, retryable: true });
    } else {
      entry.isolated = !('handler' in config);
      entry.settled = this.execute(entry, config).finally(() =>
        this.emit('ended', { attemptId: a.attemptId, aborted: entry.abort.signal.aborted }),
      );
    }
  }

  private async execute(entry: Entry, config: QueueConfig): Promise<void> {
    const a = entry.assignment;
    const signal = entry.abort.signal;
    const progress = (value: Json): void => this.progress(entry, value);
    // The attempt's resource trace: sampled by the exec runner, or given by the handler (ctx.setTrace).
    let trace: Trace | null = null;
    let outcome: Outcome;
    try {
      let result: Json;
      if ('handler' in config) {
        const setTrace = (value: Trace | null): void => {
          trace = value === null ? null : normalizeTrace(value);
        };
        const setOutputDir = (dir: string | null): void => {
          if (config.publish !== undefined) entry.outputDir = dir;
        };
        const ctx: HandlerContext = { assignment: a, signal, progress, setTrace, setOutputDir };
        result = await config.handler(a.payload, ctx);
      } else if ('module' in config) {
        result = await this.pools.get(a.queue)!.run(a.payload, a, { signal, progress, trace: (t) => (trace = t) });
      } else {
        if (config.publish !== undefined) entry.outputDir = outDirOf(config.exec, a);
        const ran = await runExec(config.exec, {
          assignment: a,
          payload: a.payload,
          signal,
          progress,
          onSpawn: (pid) => this.emit('spawned', { attemptId: a.attemptId, pid }),
        });
        result = ran.result;
        trace = ran.trace;
      }
      outcome = resultOutcome(result, trace);
    } catch (err) {
      const f = failureOf(err);
      outcome = { ok: false, ...f };
    }
    if (signal.aborted) return;
    this.finish(entry, outcome);
  }

  /** An output that will never be published: the attempt failed, was given up, or its result was refused. */
  private dropOutput(entry: Entry): void {
    const dir = entry.outputDir;
    entry.outputDir = null;
    if (dir === null || !this.outputs) return;
    this.outputs.release(entry.assignment.attemptId);
    const outputs = this.outputs;
    // A child or handler still stopping may still write into it.
    void entry.settled.then(() => outputs.remove(dir));
  }

  private finish(entry: Entry, outcome: Outcome): void {
    const { attemptId, lease, jobId } = entry.assignment;
    if (entry.progress.timer) clearTimeout(entry.progress.timer);
    entry.progress.timer = null;
    if (outcome.ok) {
      entry.report = { type: 'complete', attemptId, lease, result: outcome.result };
      if (outcome.trace) entry.report.trace = outcome.trace;
      if (entry.outputDir !== null && this.outputs) {
        // Kept until the coordinator says publish (the result was accepted) or discard.
        this.outputs.hold(attemptId, jobId, entry.assignment.queue, entry.outputDir);
        entry.report.output = true;
      }
      this.emit('finished', { attemptId, jobId, ok: true });
    } else {
      this.dropOutput(entry);
      const error = { code: outcome.code, message: outcome.message.slice(0, LIMITS.errorMessageMaxChars) };
      entry.report = { type: 'fail', attemptId, lease, error, retryable: outcome.retryable };
      this.emit('finished', { attemptId, jobId, ok: false, error });
    }
    this.send(entry.report);
  }

  private abortEntry(attemptId: string, reason: string): void {
    const e = this.running.get(attemptId);
    if (!e) return;
    this.running.delete(attemptId);
    if (e.progress.timer) clearTimeout(e.progress.timer);
    this.dropOutput(e);
    if (!e.report) {
      e.abort.abort(new AbortError(reason));
      this.emit('aborted', { attemptId, reason });
      // Named in heartbeats until its child or thread has stopped: the coordinator keeps its slot and GPUs held until then.
      if (e.isolated) this.halting.add({ attemptId, lease: e.assignment.lease }, e.settled);
    }
    this.checkIdle();
  }

  /** Sends the latest progress of an attempt, at most once per progressMinIntervalMs. */
  private progress(entry: Entry, value: Json): void {
    if (entry.report || entry.abort.signal.aborted) return;
    this.emit('progress', { attemptId: entry.assignment.attemptId, value });
    const p = entry.progress;
    p.value = value;
    if (p.timer) return;
    const minMs = this.options.progressMinIntervalMs ?? WORKER_DEFAULTS.progressMinIntervalMs;
    const flush = (): void => {
      p.timer = null;
      if (entry.report || entry.abort.signal.aborted || p.value === undefined) return;
      const bytes = exceedsJsonDepth(p.value, LIMITS.jsonNestingMaxLevels) ? null : jsonBytes(p.value);
      if (bytes === null || bytes > LIMITS.progressMaxBytes) {
        this.log.warn({ attemptId: entry.assignment.attemptId, bytes }, 'progress dropped: not JSON, nested deeper than jsonNestingMaxLevels, or larger than progressMaxBytes');
      } else {
        const { attemptId, lease } = entry.assignment;
        this.send({ type: 'progress', attemptId, lease, progress: p.value });
      }
      p.value = undefined;
      p.lastSentAt = Date.now();
    };
    const waitMs = p.lastSentAt + minMs - Date.now();
    if (waitMs <= 0) flush();
    else p.timer = setTimeout(flush, waitMs);
  }

  // ---- Heartbeats ----

  private refs(): LeaseRefFrame[] {
    const held = [...this.running.values()].map((e) => ({ attemptId: e.assignment.attemptId, lease: e.assignment.lease }));
    return this.halting.after(held, Object.values(this.options.queues).reduce((n, q) => n + q.slots, 0));
  }

  /** The heartbeat period: the coordinator's interval, and a third of the shortest heartbeat timeout held. */
  private periodMs(): number {
    let ms = Math.min(this.welcomeIntervalMs, this.options.heartbeatIntervalMs ?? Infinity);
    for (const e of this.running.values()) ms = Math.min(ms, e.assignment.heartbeatTimeoutMs / 3);
    return Math.max(HEARTBEAT_MIN_MS, ms);
  }

  private scheduleHeartbeat(): void {
    this.clearTimer('heartbeatTimer');
    if (!this.welcomed) return;
    const ms = this.periodMs();
    this.nextBeatAt = Date.now() + ms;
    this.heartbeatTimer = setTimeout(() => this.beat(), ms);
  }

  /** New attempts may need a shorter period than the one scheduled. */
  private rescheduleHeartbeat(): void {
    if (this.welcomed && Date.now() + this.periodMs() < this.nextBeatAt) this.scheduleHeartbeat();
  }

  private beat(): void {
    this.heartbeatTimer = null;
    const ws = this.ws;
    if (!ws || !this.welcomed) return;
    this.send({ type: 'heartbeat', attempts: this.refs() });
    for (const e of this.running.values()) {
      if (!e.resend.due || !e.report || e.resend.at > Date.now()) continue;
      e.resend.due = false;
      this.send(e.report);
    }
    ws.ping();
    // Checked after the poll phase, so a pong already waiting in the socket counts.
    setImmediate(() => {
      const silentMs = Date.now() - this.lastHeardAt;
      if (this.ws === ws && silentMs > SILENT_INTERVALS * this.welcomeIntervalMs) {
        this.log.warn({ silentMs }, 'the coordinator is silent; reconnecting');
        ws.terminate();
      }
    });
    this.scheduleHeartbeat();
  }

  // ---- Sending ----

  /** Sends when welcomed; otherwise drops (reports are sent again after the next welcome). */
  private send(frame: WorkerFrame): void {
    const ws = this.ws;
    if (!ws || !this.welcomed || ws.readyState !== WebSocket.OPEN) return;
    ws.send(JSON.stringify(frame));
  }

  // ---- Shutdown ----

  private whenIdle(): Promise<void> {
    if (this.running.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private checkIdle(): void {
    if (this.running.size === 0) for (const w of this.idleWaiters.splice(0)) w();
  }

  private async shutdown(reason: string): Promise<void> {
    this.clearTimer('reconnectTimer');
    this.clearTimer('heartbeatTimer');
    for (const w of this.startWaiters.splice(0)) w.reject(new Error(`the worker stopped before it connected: ${reason}`));
    const settling: Promise<void>[] = [];
    for (const e of [...this.running.values()]) {
      if (e.report) continue;
      const { attemptId, lease } = e.assignment;
      // Reported first, so the coordinator can hand the job on without waiting for the lease to run out.
      this.send({ type: 'fail', attemptId, lease, error: { code: 'WORKER_STOPPED', message: `${reason} before the attempt finished` }, retryable: true });
      this.abortEntry(attemptId, reason);
      if (e.isolated) settling.push(e.settled);
    }
    await this.closeSocket();
    await Promise.allSettled(settling);
    await Promise.allSettled([...this.pools.values()].map((p) => p.close()));
    await this.outputs?.stop();
    process.off('SIGTERM', this.onSignal);
    process.off('SIGINT', this.onSignal);
    this.emit('stopped');
  }

  private async closeSocket(): Promise<void> {
    this.clearTimer('connectTimer');
    const ws = this.ws;
    if (!ws) return;
    if (ws.readyState === WebSocket.CLOSED) return;
    const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
    if (ws.readyState === WebSocket.OPEN) ws.close(1000, 'worker stopped');
    else ws.terminate();
    const cut = setTimeout(() => ws.terminate(), CLOSE_GRACE_MS);
    await closed;
    clearTimeout(cut);
  }

  private signalled(sig: NodeJS.Signals): void {
    if (this.phase === 'running') {
      this.log.info({ signal: sig }, 'draining on signal');
      void this.drain().then(() => process.exit(0));
    } else {
      this.log.warn({ signal: sig }, 'second signal: giving up running attempts now');
      void this.stop(`${sig} received twice`).then(() => process.exit(1));
    }
  }

  private clearTimer(name: 'heartbeatTimer' | 'reconnectTimer' | 'connectTimer'): void {
    const t = this[name];
    if (t) clearTimeout(t);
    this[name] = null;
  }
}

class AbortError extends Error {
  override name = 'AbortError';
}
