// Test helpers (used by tests only): a fake coordinator, a WebSocket server on
// 127.0.0.1 that speaks the worker protocol by hand, so a test can send a real
// SDK worker frames no honest coordinator would (ids that are paths, acks of
// its choosing) and read every frame the worker sends back.
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { PROTOCOL_DEFAULTS } from '../types/limits.ts';
import type { Assignment } from '../types/model.ts';
import { PROTOCOL_VERSION, WORKER_PATH, type CoordinatorFrame, type WorkerFrame } from '../types/protocol.ts';

export interface FakeCoordinator {
  /** ws://127.0.0.1:<port>/v1/worker */
  url: string;
  /** The worker id every welcome gives. */
  workerId: string;
  /** Sends a frame on the latest connection (after its welcome). */
  send(frame: CoordinatorFrame): void;
  /** The first frame the worker has sent, or sends next, that matches. */
  next<T extends WorkerFrame = WorkerFrame>(match: (f: WorkerFrame) => boolean): Promise<T>;
  /** Every frame the worker has sent, in order. */
  frames: WorkerFrame[];
  close(): Promise<void>;
}

export async function startFakeCoordinator(workerId = '01J00000000000000000000000'): Promise<FakeCoordinator> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, path: WORKER_PATH });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  const frames: WorkerFrame[] = [];
  let waiters: { match: (f: WorkerFrame) => boolean; resolve: (f: WorkerFrame) => void }[] = [];
  let current: WebSocket | null = null;
  const deliver = (): void => {
    waiters = waiters.filter((w) => {
      const found = frames.find(w.match);
      if (!found) return true;
      w.resolve(found);
      return false;
    });
  };
  wss.on('connection', (ws) => {
    ws.on('message', (data) => {
      const frame = JSON.parse(String(data)) as WorkerFrame;
      frames.push(frame);
      if (frame.type === 'hello') {
        current = ws;
        ws.send(JSON.stringify({
          type: 'welcome',
          protocol: PROTOCOL_VERSION,
          workerId,
          heartbeatIntervalMs: 1000,
          frameMaxBytes: PROTOCOL_DEFAULTS.frameMaxBytes,
          resumed: [],
          revoked: [],
        } satisfies CoordinatorFrame));
      }
      deliver();
    });
  });
  const port = (wss.address() as AddressInfo).port;
  return {
    url: `ws://127.0.0.1:${port}${WORKER_PATH}`,
    workerId,
    frames,
    send(frame) {
      if (!current) throw new Error('no worker has said hello yet');
      current.send(JSON.stringify(frame));
    },
    next<T extends WorkerFrame>(match: (f: WorkerFrame) => boolean): Promise<T> {
      return new Promise<T>((resolve) => {
        waiters.push({ match, resolve: resolve as (f: WorkerFrame) => void });
        deliver();
      });
    },
    async close() {
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}

/** An assignment as a coordinator sends it; ids and the rest may be overridden with anything. */
export function fakeAssignment(over: Partial<Assignment> & Pick<Assignment, 'attemptId' | 'jobId' | 'queue'>): Assignment {
  return {
    lease: 'L',
    workerId: '01J00000000000000000000000',
    payload: null,
    gpuIds: [],
    cores: 0,
    memoryMb: 0,
    attempt: 1,
    timeoutMs: 60_000,
    heartbeatTimeoutMs: 30_000,
    leaseExpiresAt: 0,
    deadline: null,
    labels: {},
    ...over,
  };
}
