// The ledger of a scenario: what the store told the test (acknowledged jobs,
// leases handed out, results accepted), and the check of a reading of the
// store against it.
import { isDeepStrictEqual } from 'node:util';
import type { Assignment, Job, Json, NewJob, WorkerSpec } from '../../../types/model.ts';
import { canonicalJson, resultHash } from '../../rules.ts';
import { ensure, type Snapshot } from './checks.ts';

/** What the test was told: the model the store is checked against. */
export interface Ledger {
  jobs: Map<string, { spec: NewJob; createdAt: number }>;
  jobOrder: string[];
  keys: Map<string, string>;
  workers: Map<string, WorkerSpec>;
  workerOrder: string[];
  disconnected: Set<string>;
  draining: Set<string>;
  assignments: Map<string, Assignment>;
  assignmentOrder: string[];
  /** Results accepted by a complete that returned, by attempt. */
  completed: Map<string, Json>;
  /** Attempts a fail that returned ended. */
  failed: Set<string>;
}

const SUBMITTED_FIELDS = [
  'queue', 'payload', 'priority', 'deadline', 'timeoutMs', 'heartbeatTimeoutMs', 'maxAttempts', 'backoff',
  'requires', 'affinity', 'dependsOn', 'replicas', 'quorum', 'verify', 'idempotencyKey', 'labels',
] as const satisfies readonly (keyof NewJob)[];

export function expectSubmitted(job: Job, spec: NewJob): void {
  for (const f of SUBMITTED_FIELDS) {
    ensure(isDeepStrictEqual(job[f], spec[f]), '1', () => `job ${job.id}.${f} is ${JSON.stringify(job[f])}, submitted ${JSON.stringify(spec[f])}`);
  }
}

/** Checks a reading of the store against what the test was told. */
export function checkLedger(L: Ledger, s: Snapshot): void {
  // 1: every acknowledged job is there, as submitted.
  for (const [id, { spec, createdAt }] of L.jobs) {
    const job = s.jobById.get(id);
    ensure(job, '1', () => `acknowledged job ${id} is gone`);
    ensure(job.createdAt === createdAt, '1', () => `job ${id} createdAt changed`);
    expectSubmitted(job, spec);
  }
  ensure(s.jobs.length === L.jobs.size, '1', () => `the store holds ${s.jobs.length} jobs; ${L.jobs.size} were acknowledged`);
  // 4: one job per key, the one the first submit returned.
  for (const [key, id] of L.keys) {
    const holders = s.jobs.filter((j) => j.idempotencyKey === key);
    ensure(holders.length === 1 && holders[0]!.id === id, '4', () => `key ${key} is held by ${holders.map((j) => j.id)}, not ${id}`);
  }
  // 2 and 3: attempts come from claims; results and failures from reports under the current lease.
  for (const a of s.attemptById.values()) {
    const given = L.assignments.get(a.id);
    ensure(given && given.jobId === a.jobId && given.workerId === a.workerId && isDeepStrictEqual(given.gpuIds, a.gpuIds), '3', () => `attempt ${a.id} was never handed out as it is: ${JSON.stringify(a)}`);
    if (a.state === 'completed' || a.state === 'rejected') {
      ensure(L.completed.has(a.id), '3', () => `attempt ${a.id} is ${a.state} but no complete under its lease returned`);
      ensure(a.resultHash === resultHash(L.completed.get(a.id)!), '2', () => `attempt ${a.id} holds a result hash that is not its result's`);
    } else {
      ensure(!L.completed.has(a.id), '2', () => `attempt ${a.id} accepted a result but is ${a.state}`);
    }
    if (a.state === 'failed' && a.error?.code !== 'TIMEOUT') {
      ensure(L.failed.has(a.id), '3', () => `attempt ${a.id} failed (${JSON.stringify(a.error)}) but no fail under its lease returned`);
    }
  }
  // 2: a succeeded job's result is the result of one of its completed attempts.
  for (const job of s.jobs) {
    if (job.state !== 'succeeded') continue;
    const text = canonicalJson(job.result);
    const from = (s.attempts.get(job.id) ?? []).filter((a) => a.state === 'completed' && L.completed.has(a.id) && canonicalJson(L.completed.get(a.id)!) === text);
    ensure(from.length > 0, '2', () => `job ${job.id} succeeded with ${text}, which no completed attempt returned`);
  }
}
