// The worker protocol: JSON frames over a WebSocket at /v1/worker. The first
// frame a worker sends is `hello`, naming the protocol version; the coordinator
// answers `welcome`. docs/worker-protocol.md describes every frame.
import type { Assignment, JobError, Json, Labels } from './model.ts';

export const PROTOCOL_VERSION = 1;

export interface LeaseRefFrame {
  attemptId: string;
  lease: string;
}

// ---- Worker to coordinator ----

export interface HelloFrame {
  type: 'hello';
  protocol: number;
  worker: {
    /** Send the id from the last welcome when reconnecting, to keep your attempts. */
    id?: string;
    name: string;
    labels?: Labels;
    cores?: number;
    memoryMb?: number;
    gpuIds?: number[];
    queues: Record<string, number>;
    keys?: string[];
  };
  /** Attempts this worker is still running (after a reconnect). */
  attempts?: LeaseRefFrame[];
}

export interface HeartbeatFrame {
  type: 'heartbeat';
  attempts: LeaseRefFrame[];
}

export interface ProgressFrame extends LeaseRefFrame {
  type: 'progress';
  progress: Json;
}

export interface CompleteFrame extends LeaseRefFrame {
  type: 'complete';
  result: Json;
}

export interface FailFrame extends LeaseRefFrame {
  type: 'fail';
  error: { code: string; message: string };
  /** False: fail the job now, whatever retries remain. Default true. */
  retryable?: boolean;
}

export interface KeysFrame {
  type: 'keys';
  hold?: string[];
  release?: string[];
}

export interface DrainFrame {
  type: 'drain';
}

export type WorkerFrame = HelloFrame | HeartbeatFrame | ProgressFrame | CompleteFrame | FailFrame | KeysFrame | DrainFrame;

// ---- Coordinator to worker ----

export interface WelcomeFrame {
  type: 'welcome';
  protocol: number;
  workerId: string;
  /** Heartbeat at least this often. */
  heartbeatIntervalMs: number;
  /** Of the attempts named in hello: those still yours (keep running) and those lost (stop them). */
  resumed: string[];
  revoked: string[];
}

export interface AssignFrame {
  type: 'assign';
  assignments: Assignment[];
}

export interface RevokeFrame {
  type: 'revoke';
  attemptIds: string[];
  reason: string;
}

/** The answer to a complete or fail: accepted, or refused with an error. */
export interface AckFrame {
  type: 'ack';
  attemptId: string;
  ok: boolean;
  error?: { code: string; message: string };
}

export interface ErrorFrame {
  type: 'error';
  code: string;
  message: string;
}

export type CoordinatorFrame = WelcomeFrame | AssignFrame | RevokeFrame | AckFrame | ErrorFrame;

export type { JobError };
