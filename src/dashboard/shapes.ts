// The API's answers as the dashboard reads them (docs/http-api.md).
import type { Attempt, Job } from '../types/model.ts';

export type { Attempt, Job };

export interface QueueStats {
  queue: string;
  counts: Record<string, number>;
  slots: { workers: number; total: number; used: number };
  oldestReadyAgeMs?: number | null;
  recent: { spanMs: number; completed: number; failed: number; throughputPerMinute: number; runTimeMeanMs: number | null; runTimeP95Ms: number | null };
  paused?: boolean;
  [more: string]: unknown;
}

export interface QueuesAnswer {
  windowMs: number;
  queues: QueueStats[];
}

export interface WorkerView {
  id: string;
  name: string;
  labels: Record<string, string>;
  cores: number;
  memoryMb: number;
  gpuIds: number[];
  queues: Record<string, number>;
  running: Record<string, number>;
  /** Queues paused on this worker (absent from servers without worker queue pauses). */
  pausedQueues?: string[];
  state: string;
  draining: boolean;
  quarantined: boolean;
  quarantineReason: string | null;
  /** The operator of the token that created the record (null without tokens). */
  operator: string | null;
  /** Where it runs, as it reported: host name and process id. */
  host: string | null;
  pid: number | null;
  reputation: { valid: number; invalid: number; timedOut: number; credit: number; streak: number; soloSinceCheck: number };
  checks: Record<string, { state: string; jobId: string; speedMs: number | null; reason: string | null; updatedAt: number }>;
  connected: boolean;
  connectedAt: number | null;
  lastSeenAt: number | null;
  createdAt: number;
  attempts?: Attempt[];
}

export type JobView = Job & { attemptList?: Attempt[] };

export const JOB_STATE_ORDER = ['waiting', 'queued', 'running', 'verifying', 'succeeded', 'failed', 'cancelled', 'expired'];
export const WORKER_STATE_ORDER = ['probing', 'idle', 'busy', 'draining', 'offline', 'quarantined'];
export const TERMINAL_JOB_STATES = ['succeeded', 'failed', 'cancelled', 'expired'];
