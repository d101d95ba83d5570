// The worker protocol: JSON frames over a WebSocket at /v1/worker. The first
// frame a worker sends is `hello`, naming the protocol version; the coordinator
// answers `welcome`. docs/worker-protocol.md describes every frame.
import type { Assignment, JobError, Json, Labels, PublishManifest, Trace } from './model.ts';

export const PROTOCOL_VERSION = 1;

/** The path of the worker endpoint on the coordinator's HTTP server. */
export const WORKER_PATH = '/v1/worker';

/** WebSocket close codes the coordinator uses (4000-4999 is the range for applications). */
export const CLOSE_CODES = {
  /** The coordinator is shutting down (standard "going away"): reconnect, to it or another. */
  goingAway: 1001,
  /** A frame was larger than frameHardMaxBytes (standard "message too big"). */
  tooBig: 1009,
  /** The coordinator could not handle hello now (its store is unavailable): reconnect after a backoff, to another URL if you have one. */
  tryAgainLater: 1013,
  /** Too many protocol violations on this connection, or a hello naming more attempts than its slots allow. */
  protocolViolations: 4400,
  /** More than sendBufferMaxBytes of frames to this worker wait unsent: it does not read them. */
  slowReader: 4413,
  /** No hello within helloTimeoutMs, or nothing at all within idleTimeoutMs. */
  timeout: 4408,
  /** hello named a worker id created under another operator's token (WORKER_ID_TAKEN); do not retry with that id. */
  identityRefused: 4403,
  /** Another connection of the same operator said hello with this worker's id; this one is no longer used. */
  superseded: 4409,
  /** hello named a protocol version this coordinator does not speak. */
  unsupportedProtocol: 4426,
} as const;

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
    /** Where the worker runs (its host name and process id), shown to operators. */
    host?: string;
    pid?: number;
  };
  /**
   * After a reconnect: the attempts this worker still runs, and those it
   * finished but has not had acknowledged. welcome says which are still its own.
   */
  attempts?: LeaseRefFrame[];
}

/** Also sent with an empty list by an idle worker: it keeps the worker online. */
export interface HeartbeatFrame {
  type: 'heartbeat';
  /** Every attempt the worker runs or has not yet had acknowledged; only these leases are extended. */
  attempts: LeaseRefFrame[];
}

export interface ProgressFrame extends LeaseRefFrame {
  type: 'progress';
  progress: Json;
}

export interface CompleteFrame extends LeaseRefFrame {
  type: 'complete';
  result: Json;
  /** The attempt's resource trace, when the worker measured one (trace verification). Optional; null is the same as none. */
  trace?: Trace | null;
  /** True: this attempt left an output directory that the worker publishes once the result is accepted (docs/publishing.md). */
  output?: boolean;
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

/** The answer to a publish frame: what was published, or why it could not be. */
export interface PublishedFrame {
  type: 'published';
  jobId: string;
  attemptId: string;
  manifest?: PublishManifest;
  error?: { code: string; message: string };
}

export type WorkerFrame = HelloFrame | HeartbeatFrame | ProgressFrame | CompleteFrame | FailFrame | KeysFrame | DrainFrame | PublishedFrame;

// ---- Coordinator to worker ----

export interface WelcomeFrame {
  type: 'welcome';
  protocol: number;
  workerId: string;
  /** Heartbeat at least this often (and at least every third of each attempt's heartbeatTimeoutMs). */
  heartbeatIntervalMs: number;
  /** The largest frame the coordinator accepts, in bytes of UTF-8 JSON. */
  frameMaxBytes: number;
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

/** A frame was refused. Out-of-protocol frames also count towards protocolViolationsMax. */
export interface ErrorFrame {
  type: 'error';
  /** A code from the error catalogue (docs/errors.md): PROTOCOL_ERROR, PAYLOAD_TOO_LARGE, INVALID_INPUT, ... */
  code: string;
  message: string;
  /** The type of the frame refused, when it had one. */
  frame?: string;
  /** The attempt the refused frame named, if any. */
  attemptId?: string;
}

/** The attempt's result was accepted: publish its output directory, then answer with published. Sent again until answered. */
export interface PublishFrame {
  type: 'publish';
  jobId: string;
  attemptId: string;
  queue: string;
}

/** These attempts' outputs will never be published (rejected, or another replica's was accepted): delete them. */
export interface DiscardFrame {
  type: 'discard';
  attempts: { jobId: string; attemptId: string }[];
}

/** The answer to published: the coordinator recorded it (ok: the output may now be deleted), or refused it. */
export interface RecordedFrame {
  type: 'recorded';
  attemptId: string;
  ok: boolean;
  error?: { code: string; message: string };
}

export type CoordinatorFrame = WelcomeFrame | AssignFrame | RevokeFrame | AckFrame | ErrorFrame | PublishFrame | DiscardFrame | RecordedFrame;

export type { JobError };
