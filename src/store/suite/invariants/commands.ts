// The command model of the invariant properties: what a random command
// sequence is made of (fast-check arbitraries), and the jobs, results and
// leases the commands send.
import fc from 'fast-check';
import type { JobSpec, Json, NewJob, Trace } from '../../../types/model.ts';
import { newJob } from '../../../types/new-job.ts';

const QUEUES = ['q.a', 'q.b'] as const;
export const KEYS = ['k1', 'k2', 'k3'] as const;
export const ZONES = ['x', 'y'] as const;
export const START_MS = Date.UTC(2026, 0, 1);
export const MAX_WORKERS = 6;

export interface JobGen {
  queue: (typeof QUEUES)[number];
  priority: number;
  replicas: number;
  quorumPick: number;
  margin: number;
  cores: number;
  memoryMb: number;
  gpus: number;
  zone: (typeof ZONES)[number] | null;
  affinity: { key: (typeof KEYS)[number]; mode: 'prefer' | 'require' } | null;
  deps: number[];
  key: number | null;
  heartbeatTimeoutMs: number;
  timeoutMs: number;
  maxAttempts: number;
  backoffBaseMs: number;
  runAtInMs: number | null;
  deadlineInMs: number | null;
  payload: number;
  /** With replicas: adaptive replication. */
  adaptive: boolean;
  /** With 3 or more replicas: trace verification. */
  trace: boolean;
}

export interface WorkerGen {
  slotsA: number;
  slotsB: number;
  cores: number;
  memoryMb: number;
  gpus: number;
  keys: string[];
  zone: (typeof ZONES)[number] | null;
}

export type LeaseChoice = 'right' | 'stale' | 'wrong' | 'missing';

export type Op =
  | { kind: 'submit'; jobs: JobGen[]; bogusDep: boolean }
  | { kind: 'register'; worker: WorkerGen }
  | { kind: 'claim'; mask: number; maxJobs: number }
  | { kind: 'heartbeat'; worker: number; named: boolean; mask: number; wrongMask: number; foreign: boolean }
  | { kind: 'progress'; pick: number; lease: LeaseChoice }
  | { kind: 'complete'; pick: number; lease: LeaseChoice; result: number }
  | { kind: 'fail'; pick: number; lease: LeaseChoice; retryable: boolean }
  | { kind: 'cancel'; job: number }
  | { kind: 'retry'; job: number }
  | { kind: 'advance'; ms: number }
  | { kind: 'expireAttempts'; limit: number }
  | { kind: 'expireDeadlines'; limit: number }
  | { kind: 'speculate'; multiplier: number; shareMax: number }
  | { kind: 'disconnect'; worker: number }
  | { kind: 'reconnect'; worker: number }
  | { kind: 'drain'; worker: number; draining: boolean }
  | { kind: 'quarantine'; worker: number; on: boolean }
  | { kind: 'restart' };

export interface Scenario {
  /** Seeds the store's random source: lease tokens, ids, backoff jitter. */
  storeSeed: number;
  workers: WorkerGen[];
  ops: Op[];
}

/** `arb` in `some` of `some + none` cases, else null. */
function maybe<T>(some: number, none: number, arb: fc.Arbitrary<T>): fc.Arbitrary<T | null> {
  return fc.oneof({ arbitrary: fc.constant(null), weight: none }, { arbitrary: arb, weight: some });
}

const jobGenArb: fc.Arbitrary<JobGen> = fc
  .record({
    queue: fc.constantFrom(...QUEUES),
    priority: fc.integer({ min: -2, max: 2 }),
    replicas: fc.oneof({ arbitrary: fc.constant(1), weight: 3 }, { arbitrary: fc.integer({ min: 2, max: 3 }), weight: 1 }),
    quorumPick: fc.nat({ max: 2 }),
    margin: fc.integer({ min: 1, max: 2 }),
    cores: fc.oneof({ arbitrary: fc.constant(0), weight: 1 }, { arbitrary: fc.integer({ min: 1, max: 4 }), weight: 1 }),
    memoryMb: fc.constantFrom(0, 0, 512, 1024, 3000),
    gpus: fc.oneof({ arbitrary: fc.constant(0), weight: 2 }, { arbitrary: fc.integer({ min: 1, max: 2 }), weight: 1 }),
    zone: maybe(1, 4, fc.constantFrom(...ZONES)),
    affinity: maybe(1, 3, fc.record({ key: fc.constantFrom(...KEYS), mode: fc.constantFrom('prefer' as const, 'require' as const) })),
    deps: fc.oneof({ arbitrary: fc.constant([] as number[]), weight: 3 }, { arbitrary: fc.array(fc.nat(), { minLength: 1, maxLength: 2 }), weight: 1 }),
    key: maybe(1, 2, fc.nat({ max: 5 })),
    heartbeatTimeoutMs: fc.oneof(fc.integer({ min: 100, max: 1000 }), fc.integer({ min: 2000, max: 30_000 })),
    timeoutMs: fc.oneof(fc.integer({ min: 200, max: 3000 }), fc.integer({ min: 5000, max: 60_000 })),
    maxAttempts: fc.integer({ min: 1, max: 3 }),
    backoffBaseMs: fc.integer({ min: 0, max: 400 }),
    runAtInMs: maybe(1, 4, fc.integer({ min: 0, max: 3000 })),
    deadlineInMs: maybe(1, 4, fc.integer({ min: 0, max: 20_000 })),
    payload: fc.nat({ max: 1000 }),
    adaptive: fc.boolean(),
    trace: fc.nat({ max: 2 }).map((n) => n === 0),
  })
  .map((g) => g);

const workerGenArb: fc.Arbitrary<WorkerGen> = fc.record({
  slotsA: fc.integer({ min: 0, max: 3 }),
  slotsB: fc.integer({ min: 0, max: 3 }),
  cores: fc.oneof({ arbitrary: fc.integer({ min: 0, max: 3 }), weight: 1 }, { arbitrary: fc.integer({ min: 4, max: 8 }), weight: 3 }),
  memoryMb: fc.constantFrom(0, 2048, 4096, 8192),
  gpus: fc.integer({ min: 0, max: 3 }),
  keys: fc.subarray([...KEYS]),
  zone: maybe(1, 1, fc.constantFrom(...ZONES)),
});

const leaseChoiceArb = fc.constantFrom<LeaseChoice>('right', 'right', 'right', 'right', 'right', 'stale', 'wrong', 'missing');

function opArb(restart: boolean): fc.Arbitrary<Op> {
  const w = (weight: number, arbitrary: fc.Arbitrary<Op>): fc.WeightedArbitrary<Op> => ({ weight, arbitrary });
  const ops: fc.WeightedArbitrary<Op>[] = [
    w(7, fc.record({ kind: fc.constant('submit' as const), jobs: fc.array(jobGenArb, { minLength: 1, maxLength: 4 }), bogusDep: fc.nat({ max: 11 }).map((n) => n === 0) })),
    w(1, fc.record({ kind: fc.constant('register' as const), worker: workerGenArb })),
    w(8, fc.record({ kind: fc.constant('claim' as const), mask: fc.nat({ max: 63 }), maxJobs: fc.integer({ min: 1, max: 8 }) })),
    w(3, fc.record({ kind: fc.constant('heartbeat' as const), worker: fc.nat(), named: fc.boolean(), mask: fc.nat({ max: 255 }), wrongMask: fc.nat({ max: 255 }), foreign: fc.boolean() })),
    w(1, fc.record({ kind: fc.constant('progress' as const), pick: fc.nat(), lease: leaseChoiceArb })),
    w(8, fc.record({ kind: fc.constant('complete' as const), pick: fc.nat(), lease: leaseChoiceArb, result: fc.nat({ max: 2 }) })),
    w(3, fc.record({ kind: fc.constant('fail' as const), pick: fc.nat(), lease: leaseChoiceArb, retryable: fc.boolean() })),
    w(1, fc.record({ kind: fc.constant('cancel' as const), job: fc.nat() })),
    w(1, fc.record({ kind: fc.constant('retry' as const), job: fc.nat() })),
    w(4, fc.record({ kind: fc.constant('advance' as const), ms: fc.constantFrom(0, 50, 150, 500, 1500, 5000) })),
    w(2, fc.record({ kind: fc.constant('expireAttempts' as const), limit: fc.constantFrom(1, 500) })),
    w(1, fc.record({ kind: fc.constant('expireDeadlines' as const), limit: fc.constantFrom(1, 500) })),
    w(2, fc.record({ kind: fc.constant('speculate' as const), multiplier: fc.constantFrom(0, 0.5, 1.5), shareMax: fc.constantFrom(0, 0.1, 0.5, 1) })),
    w(1, fc.record({ kind: fc.constant('disconnect' as const), worker: fc.nat() })),
    w(1, fc.record({ kind: fc.constant('reconnect' as const), worker: fc.nat() })),
    w(1, fc.record({ kind: fc.constant('drain' as const), worker: fc.nat(), draining: fc.boolean() })),
    w(1, fc.record({ kind: fc.constant('quarantine' as const), worker: fc.nat(), on: fc.boolean() })),
  ];
  if (restart) ops.push(w(1, fc.constant({ kind: 'restart' as const })));
  return fc.oneof(...ops);
}

export function scenarioArb(maxCommands: number, restart: boolean): fc.Arbitrary<Scenario> {
  return fc.record({
    storeSeed: fc.integer(),
    workers: fc.array(workerGenArb, { minLength: 2, maxLength: 4 }),
    ops: fc.array(opArb(restart), { minLength: Math.ceil(maxCommands / 4), maxLength: maxCommands, size: 'max' }),
  });
}

/** The job a generated spec describes, submitted at `now`; its parents are picked from `order`, the jobs submitted so far. */
export function newJobOf(g: JobGen, now: number, order: readonly string[]): NewJob {
  const spec: JobSpec = {
    queue: g.queue,
    payload: { n: g.payload },
    priority: g.priority,
    timeoutMs: g.timeoutMs,
    heartbeatTimeoutMs: g.heartbeatTimeoutMs,
    maxAttempts: g.maxAttempts,
    backoff: { baseMs: g.backoffBaseMs, maxMs: g.backoffBaseMs * 4 },
    requires: { cores: g.cores, memoryMb: g.memoryMb, gpus: g.gpus, ...(g.zone ? { labels: { zone: g.zone } } : {}) },
    replicas: g.replicas,
    quorum: 1 + (g.quorumPick % g.replicas),
    margin: g.margin,
    labels: { gen: String(g.payload % 3) },
  };
  if (g.replicas > 1 && g.adaptive) spec.adaptive = true;
  if (g.replicas >= 3 && g.trace) spec.verify = { mode: 'trace', tolerance: 0.2 };
  if (g.affinity) spec.affinity = { ...g.affinity };
  if (order.length > 0 && g.deps.length > 0) spec.dependsOn = g.deps.map((d) => order[d % order.length]!);
  if (g.key !== null) spec.idempotencyKey = `key-${g.key}`;
  if (g.runAtInMs !== null) spec.runAt = now + g.runAtInMs;
  if (g.deadlineInMs !== null) spec.deadline = now + g.deadlineInMs;
  return newJob(spec);
}

export function resultValue(n: number): Json {
  return { v: n };
}

/** The trace sent with result n on a trace-verified job: two close honest shapes, and none at all for result 2. */
export function traceOf(n: number): Trace | null {
  if (n === 2) return null;
  const cpuPerSample = n === 0 ? 100 : 96;
  return { intervalMs: 100, samples: Array.from({ length: 5 }, (_, i) => ({ tMs: (i + 1) * 100, cpuMs: cpuPerSample * (i + 1), rssKb: 1000 })) };
}

export function wrongLease(lease: string): string {
  const flipped = (lease[0] === '0' ? '1' : '0') + lease.slice(1);
  return flipped;
}
