// A simulated worker: one WebSocket speaking the raw protocol
// (docs/worker-protocol.md), one slot or more, a no-op handler. It says hello,
// heartbeats at the interval welcome asks for (from a random phase, so that a
// thousand of them spread out), and completes every attempt it is assigned
// with a null result, at once or after `runMs`. With `slotClock`, it records
// how long each slot was busy and how long a freed slot waited for its next
// assignment.
import { WebSocket } from 'ws';
import { PROTOCOL_VERSION, type AckFrame, type AssignFrame, type CoordinatorFrame, type WelcomeFrame } from '../../src/types/protocol.ts';

/** Counts over every simulated worker of a run. */
export interface SimTally {
  heartbeats: number;
  assigned: number;
  completed: number;
  /** Acks refusing a result, by code. */
  refused: Record<string, number>;
  /** Error frames, by code. */
  errors: Record<string, number>;
  /** Connections closed without the bench closing them, by close code. */
  unexpectedCloses: Record<string, number>;
}

export function newTally(): SimTally {
  return { heartbeats: 0, assigned: 0, completed: 0, refused: {}, errors: {}, unexpectedCloses: {} };
}

export interface SimOptions {
  url: string;
  name: string;
  queue: string;
  tally: SimTally;
  /** Called with each assignment the worker gets (after it sent the complete). */
  onAssign?: (a: AssignFrame['assignments'][number]) => void;
  /** Called with each ack. */
  onAck?: (ack: AckFrame) => void;
  /**
   * Take one attempt only: on the first assignment the worker sends `drain`
   * before its complete, so that the coordinator hands it nothing more (an
   * attempt leased to a worker that then leaves would hold its job until the
   * lease expires).
   */
  takeOne?: boolean;
  /** Slots it declares (default 1). */
  slots?: number;
  /** How long each attempt "runs" before its complete is sent (default 0: at once). */
  runMs?: number;
  /** Where busy time and slot waits are recorded (slots.ts). */
  slotClock?: SlotClock;
}

/** Most slot waits kept for the percentiles; later ones are counted, not kept. */
export const SLOT_WAITS_KEPT_MAX = 500_000;

/**
 * Busy slot-time inside a measuring window, and per freed slot the time to
 * its next assignment, over every simulated worker of a run.
 */
export class SlotClock {
  private from: number | null = null;
  private to: number | null = null;
  busyMs = 0;
  readonly waitsMs: number[] = [];
  waitsCounted = 0;
  /** Attempts running now: their start times. */
  private readonly running = new Map<string, number>();

  open(now: number): void {
    this.from = now;
    for (const [id, start] of this.running) this.running.set(id, Math.max(start, now));
  }

  /** Ends the window: what still runs counts up to now. */
  close(now: number): void {
    if (this.from === null || this.to !== null) return;
    for (const start of this.running.values()) this.busyMs += Math.max(0, now - Math.max(start, this.from));
    this.to = now;
  }

  started(attemptId: string, now: number): void {
    this.running.set(attemptId, now);
  }

  ended(attemptId: string, now: number): void {
    const start = this.running.get(attemptId);
    this.running.delete(attemptId);
    if (start === undefined || this.from === null || this.to !== null) return;
    this.busyMs += Math.max(0, now - Math.max(start, this.from));
  }

  /** A freed slot got its next assignment after waitMs (it freed at freedAt); counted when it freed inside the window, even if the assignment came after. */
  waited(freedAt: number, waitMs: number): void {
    if (this.from === null || freedAt < this.from || (this.to !== null && freedAt > this.to)) return;
    this.waitsCounted++;
    if (this.waitsMs.length < SLOT_WAITS_KEPT_MAX) this.waitsMs.push(waitMs);
  }

  /** Slots freed inside the window and still waiting now: each counts with what it waited so far (a lower bound). */
  stillWaiting(freedAts: readonly number[], now: number): void {
    for (const t of freedAts) this.waited(t, now - t);
  }
}

export class SimWorker {
  readonly ws: WebSocket;
  /** Resolves with the welcome; rejects if the connection fails or closes first. */
  readonly welcome: Promise<WelcomeFrame>;
  workerId: string | null = null;
  private readonly held = new Map<string, string>();
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private closing = false;
  private took = false;
  /** When each freed slot freed, oldest first: the next assignment fills the one that waited longest. */
  private readonly freedAt: number[] = [];
  private readonly options: SimOptions;

  constructor(options: SimOptions) {
    this.options = options;
    this.ws = new WebSocket(options.url, { perMessageDeflate: false });
    this.welcome = new Promise((resolve, reject) => {
      this.ws.once('open', () => {
        this.send({ type: 'hello', protocol: PROTOCOL_VERSION, worker: { name: options.name, queues: { [options.queue]: options.slots ?? 1 } } });
      });
      this.ws.once('error', reject);
      this.ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode} on the upgrade`)));
      this.ws.on('close', (code) => {
        this.stopHeartbeats();
        reject(new Error(`closed (${code}) before welcome`));
        if (!this.closing) options.tally.unexpectedCloses[String(code)] = (options.tally.unexpectedCloses[String(code)] ?? 0) + 1;
      });
      this.ws.on('message', (data) => {
        const frame = JSON.parse(String(data)) as CoordinatorFrame;
        if (frame.type === 'welcome') {
          this.workerId = frame.workerId;
          this.startHeartbeats(frame.heartbeatIntervalMs);
          resolve(frame);
        } else this.handle(frame);
      });
    });
    this.welcome.catch(() => undefined);
    this.ws.on('error', () => undefined);
  }

  /** When each of its freed slots that wait for an assignment freed. */
  freedSlots(): readonly number[] {
    return this.freedAt;
  }

  get open(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  private send(frame: object): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(frame));
  }

  private handle(frame: CoordinatorFrame): void {
    const tally = this.options.tally;
    switch (frame.type) {
      case 'assign':
        if (this.options.takeOne && !this.took) {
          this.took = true;
          this.send({ type: 'drain' });
        }
        for (const a of frame.assignments) {
          tally.assigned += 1;
          this.held.set(a.attemptId, a.lease);
          this.run(a.attemptId, a.lease);
          this.options.onAssign?.(a);
        }
        break;
      case 'ack':
        this.held.delete(frame.attemptId);
        if (frame.ok) tally.completed += 1;
        else {
          const code = frame.error?.code ?? 'UNKNOWN';
          tally.refused[code] = (tally.refused[code] ?? 0) + 1;
        }
        this.options.onAck?.(frame);
        break;
      case 'revoke':
        for (const id of frame.attemptIds) this.held.delete(id);
        break;
      case 'error':
        tally.errors[frame.code] = (tally.errors[frame.code] ?? 0) + 1;
        break;
      default:
        break;
    }
  }

  /** Completes the attempt, at once or after runMs, keeping the slot clock. */
  private run(attemptId: string, lease: string): void {
    const clock = this.options.slotClock;
    const now = performance.now();
    if (clock) {
      const freed = this.freedAt.shift();
      if (freed !== undefined) clock.waited(freed, now - freed);
      clock.started(attemptId, now);
    }
    const complete = (): void => {
      const end = performance.now();
      clock?.ended(attemptId, end);
      if (clock) this.freedAt.push(end);
      this.send({ type: 'complete', attemptId, lease, result: null });
    };
    const runMs = this.options.runMs ?? 0;
    if (runMs > 0) setTimeout(complete, runMs);
    else complete();
  }

  private startHeartbeats(intervalMs: number): void {
    const beat = (): void => {
      this.options.tally.heartbeats += 1;
      this.send({ type: 'heartbeat', attempts: [...this.held].map(([attemptId, lease]) => ({ attemptId, lease })) });
    };
    // A random first beat within the interval, then the interval: the workers' heartbeats spread out.
    this.heartbeatTimer = setTimeout(() => {
      beat();
      this.heartbeatTimer = setInterval(beat, intervalMs);
    }, Math.random() * intervalMs);
  }

  private stopHeartbeats(): void {
    if (this.heartbeatTimer) {
      clearTimeout(this.heartbeatTimer);
      clearInterval(this.heartbeatTimer);
      this.heartbeatTimer = null;
    }
  }

  /** Closes the connection (an expected close: not counted). */
  close(): Promise<void> {
    this.closing = true;
    this.stopHeartbeats();
    if (this.ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      this.ws.once('close', () => resolve());
      this.ws.close(1000);
      setTimeout(() => {
        this.ws.terminate();
        resolve();
      }, 5_000).unref();
    });
  }
}
