// One scenario of random commands against a fresh store: each command is
// applied and its answer checked, then the store is read back and checked on
// its own (checks.ts), against the previous reading, and against the ledger
// (ledger.ts). The run ends with liveness: every job must end.
import { isDeepStrictEqual } from 'node:util';
import type { TrustPolicy } from '../../../trust/index.ts';
import { TRUST_DEFAULTS } from '../../../types/limits.ts';
import { seededRandom, VirtualClock } from '../../../types/clock.ts';
import type { ErrorCode } from '../../../types/errors.ts';
import type { Assignment, Attempt, Job, Json, NewJob, PlaceFn, WorkerSpec } from '../../../types/model.ts';
import { isTerminalJobState, type JobState } from '../../../types/states.ts';
import type { LeaseRef, Store } from '../../store.ts';
import { assertUnchanged, checkSnapshot, checkTransitions, ensure, expectError, live, readSnapshot, type Snapshot } from './checks.ts';
import {
  KEYS,
  MAX_WORKERS,
  newJobOf,
  resultValue,
  START_MS,
  traceOf,
  wrongLease,
  ZONES,
  type JobGen,
  type LeaseChoice,
  type Op,
  type Scenario,
  type WorkerGen,
} from './commands.ts';
import type { OpenStore, StoreContext } from './context.ts';
import { drainToTerminal } from './drain.ts';
import { checkLedger, expectSubmitted, type Ledger } from './ledger.ts';

/**
 * Quarantine after two judged results, trust after a streak of two, frequent
 * spot checks; two extra replicas at most, so that a split vote of three
 * replicas can always find workers that have not voted among the drain's.
 */
const INVARIANT_TRUST: Partial<TrustPolicy> = {
  quarantineMinResults: 2,
  trustedStreakMin: 2,
  spotCheckProbability: 0.3,
  spotCheckMaxGapJobs: 3,
  extraReplicasMax: 2,
};

/** What a command returns when it found nothing to act on (no job, worker or attempt yet). */
const SKIP = 'skip' as const;

export async function runScenario(scenario: Scenario, open: OpenStore, place: PlaceFn, name: string, stats: Map<string, number>): Promise<void> {
  const cleanups: (() => Promise<void> | void)[] = [];
  const ctx: StoreContext = {
    clock: new VirtualClock(START_MS),
    random: seededRandom(scenario.storeSeed),
    name,
    defer: (fn) => void cleanups.push(fn),
    trust: INVARIANT_TRUST,
  };
  const run = new Run(ctx, open, place, await open(ctx), stats);
  try {
    await run.check('open');
    for (const [i, g] of scenario.workers.entries()) await run.step(`prelude ${i}`, { kind: 'register', worker: g });
    for (const [i, op] of scenario.ops.entries()) await run.step(`step ${i}`, op);
    await run.drainToEnd();
  } finally {
    await run.store.close();
    for (const fn of cleanups.reverse()) await fn();
  }
}

class Run {
  store: Store;
  private readonly ctx: StoreContext;
  private readonly open: OpenStore;
  private readonly place: PlaceFn;
  private readonly ledger: Ledger = {
    jobs: new Map(),
    jobOrder: [],
    keys: new Map(),
    workers: new Map(),
    workerOrder: [],
    disconnected: new Set(),
    draining: new Set(),
    assignments: new Map(),
    assignmentOrder: [],
    completed: new Map(),
    failed: new Set(),
  };
  private prev: Snapshot | null = null;
  /** The attempt a `complete` step just delivered a result for, until that step's check. */
  private completedNow: string | undefined;
  private readonly stats: Map<string, number>;

  constructor(ctx: StoreContext, open: OpenStore, place: PlaceFn, store: Store, stats: Map<string, number>) {
    this.ctx = ctx;
    this.open = open;
    this.place = place;
    this.store = store;
    this.stats = stats;
  }

  private count(what: string, n = 1): void {
    this.stats.set(what, (this.stats.get(what) ?? 0) + n);
  }

  private get now(): number {
    return this.ctx.clock.now();
  }

  private get before(): Snapshot {
    if (!this.prev) throw new Error('no snapshot yet');
    return this.prev;
  }

  async step(label: string, op: Op): Promise<void> {
    const where = `${label} ${JSON.stringify(op)}`;
    try {
      const outcome = await this.apply(op);
      this.count(`${op.kind}${outcome === SKIP ? '.skipped' : outcome ? '.unchanged' : ''}`);
      await this.check(where, outcome !== false);
    } catch (err) {
      if (err instanceof Error && !err.message.startsWith('at ')) err.message = `at ${where}: ${err.message}`;
      throw err;
    }
  }

  /** Reads the store, checks everything, and keeps the reading for the next step. */
  async check(label: string, unchanged = false, oneStep = true): Promise<Snapshot> {
    const next = await readSnapshot(this.store, this.now);
    try {
      checkSnapshot(next);
      if (this.prev) checkTransitions(this.prev, next, oneStep, this.completedNow);
      checkLedger(this.ledger, next);
      if (unchanged && this.prev) assertUnchanged(this.prev, next, label);
    } catch (err) {
      if (err instanceof Error && !err.message.startsWith('at ')) err.message = `at ${label}: ${err.message}`;
      throw err;
    }
    this.prev = next;
    this.completedNow = undefined;
    return next;
  }

  /** Applies one command and checks its answer; true (or SKIP: nothing to act on) when the store must be left unchanged. */
  private async apply(op: Op): Promise<boolean | typeof SKIP> {
    switch (op.kind) {
      case 'submit':
        return this.submit(op.jobs, op.bogusDep);
      case 'register':
        return this.register(op.worker);
      case 'claim':
        await this.claim(this.pickWorkers(op.mask), op.maxJobs);
        return false;
      case 'heartbeat':
        return this.heartbeat(op);
      case 'progress':
      case 'complete':
      case 'fail':
        return this.report(op);
      case 'cancel':
        return this.cancel(op.job);
      case 'retry':
        return this.retry(op.job);
      case 'advance':
        this.ctx.clock.advance(op.ms);
        return false;
      case 'expireAttempts':
        await this.expireAttempts(op.limit);
        return false;
      case 'expireDeadlines':
        await this.expireDeadlines(op.limit);
        return false;
      case 'speculate':
        await this.speculate(op.multiplier, op.shareMax);
        return false;
      case 'disconnect':
      case 'reconnect':
      case 'drain':
        return this.connection(op);
      case 'quarantine':
        return this.quarantine(op.worker, op.on);
      case 'restart':
        await this.store.close();
        this.store = await this.open(this.ctx);
        return true;
    }
  }

  // ---- Jobs ----

  private async submit(gens: JobGen[], bogusDep: boolean): Promise<boolean> {
    const specs = gens.map((g) => newJobOf(g, this.now, this.ledger.jobOrder));
    // A job whose key was seen is answered with the existing job, unchecked: the bad parent goes on a new one.
    const seenKeys = new Set(this.ledger.keys.keys());
    const fresh = specs.find((j) => {
      const isNew = j.idempotencyKey === null || !seenKeys.has(j.idempotencyKey);
      if (j.idempotencyKey !== null) seenKeys.add(j.idempotencyKey);
      return isNew;
    });
    if (bogusDep && fresh) {
      fresh.dependsOn.push('01ZZZZZZZZZZZZZZZZNOSUCHJOB');
      await expectError(this.store.submit({ jobs: specs }), ['UNKNOWN_DEPENDENCY'], 'a batch naming an unknown parent');
      return true;
    }
    const results = await this.store.submit({ jobs: specs });
    ensure(results.length === specs.length, '1', () => `submit of ${specs.length} jobs answered ${results.length}`);
    for (const [i, r] of results.entries()) {
      const spec = specs[i]!;
      const key = spec.idempotencyKey;
      const existing = key === null ? undefined : this.ledger.keys.get(key);
      if (existing !== undefined) {
        ensure(!r.created && r.job.id === existing, '4', () => `a repeated key ${key} gave ${r.created ? 'a new job' : 'job'} ${r.job.id}, not ${existing}`);
        expectSubmitted(r.job, this.ledger.jobs.get(existing)!.spec);
        continue;
      }
      ensure(r.created, '4', () => `a new key ${key} was answered as seen before (job ${r.job.id})`);
      ensure(!this.ledger.jobs.has(r.job.id), '1', () => `submit reused job id ${r.job.id}`);
      expectSubmitted(r.job, spec);
      ensure(r.job.createdAt === this.now && r.job.runAt === (spec.runAt ?? this.now), '1', () => `job ${r.job.id} createdAt/runAt ${r.job.createdAt}/${r.job.runAt}, submitted at ${this.now} runAt ${spec.runAt}`);
      const initial = this.expectedInitialStates(spec);
      ensure(initial.includes(r.job.state), '7', () => `job ${r.job.id} starts ${r.job.state}, its parents say ${initial.join(' or ')}`);
      this.ledger.jobs.set(r.job.id, { spec, createdAt: r.job.createdAt });
      this.ledger.jobOrder.push(r.job.id);
      if (key !== null) this.ledger.keys.set(key, r.job.id);
    }
    return false;
  }

  /** A new job waits for live parents, and ends at once, as the cascade would end it, when one already ended badly. */
  private expectedInitialStates(spec: NewJob): JobState[] {
    const parents = [...new Set(spec.dependsOn)].map((id) => this.before.jobById.get(id)!);
    const dead = parents.filter((p) => isTerminalJobState(p.state) && p.state !== 'succeeded');
    if (dead.length > 0) return [...new Set(dead.map((p): JobState => (p.state === 'cancelled' ? 'cancelled' : 'failed')))];
    return parents.some((p) => p.state !== 'succeeded') ? ['waiting'] : ['queued'];
  }

  private pickJob(n: number): Job | undefined {
    const order = this.ledger.jobOrder;
    return order.length === 0 ? undefined : this.before.jobById.get(order[n % order.length]!);
  }

  private async cancel(n: number): Promise<boolean | typeof SKIP> {
    const job = this.pickJob(n);
    if (!job) return SKIP;
    if (job.state === 'cancelled' || isTerminalJobState(job.state)) {
      if (job.state === 'cancelled') {
        const out = await this.store.cancel({ jobId: job.id });
        ensure(out.changes.length === 0 && out.job.state === 'cancelled', 'cancel', () => `cancelling a cancelled job changed ${JSON.stringify(out.changes)}`);
      } else {
        await expectError(this.store.cancel({ jobId: job.id }), ['INVALID_STATE'], `cancel of a ${job.state} job`);
      }
      return true;
    }
    const out = await this.store.cancel({ jobId: job.id, reason: 'test' });
    ensure(out.job.state === 'cancelled', 'cancel', () => `cancel left job ${job.id} ${out.job.state}`);
    const next = await readSnapshot(this.store, this.now);
    for (const a of this.before.attempts.get(job.id) ?? []) {
      if (!live(a)) continue;
      const cur = next.attemptById.get(a.id);
      ensure(cur?.state === 'cancelled', 'cancel', () => `cancel left attempt ${a.id} ${cur?.state}`);
    }
    ensure(isDeepStrictEqual(next.jobById.get(job.id), out.job), 'cancel', () => 'cancel answered a job that differs from the stored one');
    return false;
  }

  private async retry(n: number): Promise<boolean | typeof SKIP> {
    // Mostly a job that can be retried, so that retries happen; every third pick is any job.
    const ended = this.before.jobs.filter((j) => j.state === 'failed' || j.state === 'cancelled' || j.state === 'expired');
    const job = n % 3 === 0 || ended.length === 0 ? this.pickJob(n) : ended[n % ended.length];
    if (!job) return SKIP;
    const parentsOk = [...new Set(job.dependsOn)].every((p) => this.before.jobById.get(p)?.state === 'succeeded');
    if (!(job.state === 'failed' || job.state === 'cancelled' || job.state === 'expired') || !parentsOk) {
      await expectError(this.store.retry({ jobId: job.id }), ['INVALID_STATE'], `retry of a ${job.state} job`);
      return true;
    }
    const out = await this.store.retry({ jobId: job.id });
    const j = out.job;
    ensure(
      j.state === 'queued' && j.want === job.replicas && j.failures === 0 && j.finishedAt === null && j.result === null && j.runAt === this.now,
      'retry',
      () => `retry left job ${job.id} as ${JSON.stringify(j)}`,
    );
    return false;
  }

  // ---- Workers ----

  private async register(g: WorkerGen): Promise<boolean | typeof SKIP> {
    if (this.ledger.workerOrder.length >= MAX_WORKERS) return this.connection({ kind: 'reconnect', worker: g.cores });
    const id = `w${this.ledger.workerOrder.length}`;
    const queues: Record<string, number> = {};
    if (g.slotsA > 0 || g.slotsB === 0) queues['q.a'] = Math.max(1, g.slotsA);
    if (g.slotsB > 0) queues['q.b'] = g.slotsB;
    const spec: WorkerSpec = {
      id,
      name: `worker ${id}`,
      labels: g.zone ? { zone: g.zone } : {},
      cores: g.cores,
      memoryMb: g.memoryMb,
      gpuIds: Array.from({ length: g.gpus }, (_, i) => i),
      queues,
      keys: g.keys,
    };
    await this.upsert(spec);
    this.ledger.workerOrder.push(id);
    return false;
  }

  private async upsert(spec: WorkerSpec): Promise<void> {
    const w = await this.store.upsertWorker({ spec });
    ensure(w.id === spec.id && w.connected && !w.draining, 'workers', () => `upsertWorker answered ${JSON.stringify(w)}`);
    for (const f of ['name', 'labels', 'cores', 'memoryMb', 'gpuIds', 'queues', 'keys'] as const) {
      ensure(isDeepStrictEqual(w[f], spec[f]), 'workers', () => `worker ${w.id}.${f} is ${JSON.stringify(w[f])}, declared ${JSON.stringify(spec[f])}`);
    }
    this.ledger.workers.set(w.id, spec);
    this.ledger.disconnected.delete(w.id);
    this.ledger.draining.delete(w.id);
  }

  private pickWorker(n: number): string | undefined {
    const order = this.ledger.workerOrder;
    return order.length === 0 ? undefined : order[n % order.length];
  }

  private pickWorkers(mask: number): string[] {
    const order = this.ledger.workerOrder;
    const ids = order.filter((_, i) => (mask >> i) & 1);
    return ids.length > 0 || order.length === 0 ? ids : [order[mask % order.length]!];
  }

  /** Quarantine: the worker's live attempts are cancelled and their jobs put back; release: a fresh record. */
  private async quarantine(n: number, on: boolean): Promise<boolean | typeof SKIP> {
    const id = this.pickWorker(n);
    if (id === undefined) return SKIP;
    const held = [...this.before.attemptById.values()].filter((a) => live(a) && a.workerId === id).map((a) => a.id).sort();
    const out = await this.store.setWorkerQuarantine({ workerId: id, quarantined: on, reason: 'by the test' });
    this.count(`quarantine.${on ? 'on' : 'off'}${held.length > 0 && on ? '.held' : ''}`);
    ensure(out.worker.quarantined === on, 'trust', () => `setWorkerQuarantine(${on}) answered ${JSON.stringify(out.worker)}`);
    const next = await readSnapshot(this.store, this.now);
    if (on) {
      const stopped = out.changes.flatMap((c) => c.cancelledAttempts.map((a) => a.attemptId)).sort();
      ensure(isDeepStrictEqual(stopped, held), 'trust', () => `quarantine stopped ${stopped.join(', ')}, the worker held ${held.join(', ')}`);
      for (const a of held) ensure(next.attemptById.get(a)?.state === 'cancelled', 'trust', () => `attempt ${a} of a quarantined worker is ${next.attemptById.get(a)?.state}`);
    } else {
      const fresh = { valid: 0, invalid: 0, timedOut: 0, credit: TRUST_DEFAULTS.creditInitialSlots, streak: 0, soloSinceCheck: 0 };
      ensure(isDeepStrictEqual(out.worker.reputation, fresh), 'trust', () => `a released worker keeps ${JSON.stringify(out.worker.reputation)}`);
      ensure(isDeepStrictEqual([...this.before.attempts.entries()], [...next.attempts.entries()]), 'trust', () => 'a release changed attempts');
    }
    return false;
  }

  /** Disconnect, reconnect, drain: none of them touches a lease (invariant 8). */
  private async connection(op: Extract<Op, { kind: 'disconnect' | 'reconnect' | 'drain' }>): Promise<boolean | typeof SKIP> {
    const id = this.pickWorker(op.worker);
    if (id === undefined) return SKIP;
    if (op.kind === 'disconnect') {
      await this.store.disconnectWorker({ workerId: id });
      this.ledger.disconnected.add(id);
    } else if (op.kind === 'reconnect') {
      await this.upsert(this.ledger.workers.get(id)!);
    } else {
      const w = await this.store.setWorkerDraining({ workerId: id, draining: op.draining });
      ensure(w.draining === op.draining, 'workers', () => `setWorkerDraining(${op.draining}) answered draining=${w.draining}`);
      if (op.draining) this.ledger.draining.add(id);
      else this.ledger.draining.delete(id);
    }
    const next = await readSnapshot(this.store, this.now);
    ensure(isDeepStrictEqual([...this.before.attempts.entries()], [...next.attempts.entries()]), '8', () => `${op.kind} changed attempts`);
    return false;
  }

  // ---- Claims and reports ----

  private async claim(workerIds: string[], maxJobs: number): Promise<Assignment[]> {
    const before = this.before;
    const out = await this.store.claim({ workerIds, place: this.place, maxJobs });
    ensure(out.length <= maxJobs, 'claim', () => `claim of at most ${maxJobs} handed out ${out.length}`);
    const perJob = new Map<string, number>();
    const perJobWorkers = new Set<string>();
    for (const a of out) {
      const job = before.jobById.get(a.jobId);
      const spec = this.ledger.workers.get(a.workerId);
      ensure(job && spec && workerIds.includes(a.workerId), 'claim', () => `assignment ${JSON.stringify(a)} names an unknown job or a worker not in the claim`);
      ensure(!this.ledger.assignments.has(a.attemptId) && !before.attemptById.has(a.attemptId), 'claim', () => `attempt id ${a.attemptId} reused`);
      ensure(!this.ledger.disconnected.has(a.workerId) && !this.ledger.draining.has(a.workerId), 'claim', () => `work handed to ${a.workerId}, which is disconnected or draining`);
      ensure((job.state === 'queued' || job.state === 'running') && job.runAt <= this.now, 'claim', () => `job ${job.id} handed out while ${job.state}, runAt ${job.runAt} > now ${this.now}`);
      ensure(job.deadline === null || job.deadline > this.now || job.state === 'running', 'claim', () => `job ${job.id} handed out past its deadline ${job.deadline} (now ${this.now}) before it started`);
      perJob.set(job.id, (perJob.get(job.id) ?? 0) + 1);
      ensure((perJob.get(job.id) ?? 0) <= job.want, 'claim', () => `job ${job.id} wanted ${job.want} attempts, got more`);
      ensure(!perJobWorkers.has(`${job.id}/${a.workerId}`), '6', () => `job ${job.id} handed twice to ${a.workerId}`);
      perJobWorkers.add(`${job.id}/${a.workerId}`);
      ensure((spec.queues[job.queue] ?? 0) > 0, 'claim', () => `job ${job.id} of ${job.queue} handed to ${a.workerId}, which does not serve it`);
      for (const [k, v] of Object.entries(job.requires.labels)) {
        ensure(spec.labels[k] === v, 'claim', () => `job ${job.id} requires ${k}=${v}; worker ${a.workerId} has ${JSON.stringify(spec.labels)}`);
      }
      if (job.affinity?.mode === 'require') {
        ensure(spec.keys.includes(job.affinity.key), 'claim', () => `job ${job.id} requires key ${job.affinity?.key}; worker ${a.workerId} holds ${spec.keys}`);
      }
      ensure(
        a.queue === job.queue && isDeepStrictEqual(a.payload, job.payload) && a.cores === job.requires.cores && a.memoryMb === job.requires.memoryMb && a.gpuIds.length === job.requires.gpus && a.attempt === job.attempts + (perJob.get(job.id) ?? 0),
        'claim',
        () => `assignment ${JSON.stringify(a)} does not match job ${JSON.stringify(job)}`,
      );
      this.ledger.assignments.set(a.attemptId, a);
      this.ledger.assignmentOrder.push(a.attemptId);
    }
    this.count('claim.assigned', out.length);
    if (out.length === 0) this.count('claim.empty');
    return out;
  }

  private async heartbeat(op: Extract<Op, { kind: 'heartbeat' }>): Promise<boolean | typeof SKIP> {
    const workerId = this.pickWorker(op.worker);
    if (workerId === undefined) return SKIP;
    const before = this.before;
    const now = this.now;
    const fresh = (a: Attempt | undefined): boolean => a !== undefined && live(a) && a.leaseExpiresAt >= now;
    let expected: string[];
    let res: { extended: string[]; revoked: string[] };
    if (!op.named) {
      expected = [...before.attemptById.values()].filter((a) => a.workerId === workerId && fresh(a)).map((a) => a.id);
      res = await this.store.heartbeat({ workerId });
      ensure(res.revoked.length === 0, '3', () => `a heartbeat naming nothing revoked ${res.revoked}`);
    } else {
      const mine = this.ledger.assignmentOrder.filter((id) => this.ledger.assignments.get(id)!.workerId === workerId);
      const refs: LeaseRef[] = mine
        .filter((_, i) => (op.mask >> i % 8) & 1)
        .map((id, i) => ({ attemptId: id, lease: (op.wrongMask >> i % 8) & 1 ? wrongLease(this.ledger.assignments.get(id)!.lease) : this.ledger.assignments.get(id)!.lease }));
      const other = this.ledger.assignmentOrder.find((id) => this.ledger.assignments.get(id)!.workerId !== workerId);
      if (op.foreign && other !== undefined) refs.push({ attemptId: other, lease: this.ledger.assignments.get(other)!.lease });
      expected = refs
        .filter((r) => r.lease === this.ledger.assignments.get(r.attemptId)!.lease && this.ledger.assignments.get(r.attemptId)!.workerId === workerId)
        .filter((r) => fresh(before.attemptById.get(r.attemptId)))
        .map((r) => r.attemptId);
      res = await this.store.heartbeat({ workerId, attempts: refs });
      const revokedExpected = refs.map((r) => r.attemptId).filter((id) => !expected.includes(id));
      ensure(isDeepStrictEqual([...res.revoked].sort(), revokedExpected.sort()), '3', () => `heartbeat revoked ${res.revoked}, expected ${revokedExpected}`);
    }
    ensure(isDeepStrictEqual([...res.extended].sort(), [...expected].sort()), '3', () => `heartbeat extended ${res.extended}, expected ${expected}`);
    this.ledger.disconnected.delete(workerId);
    const next = await readSnapshot(this.store, now);
    for (const id of expected) {
      const a = next.attemptById.get(id)!;
      const job = next.jobById.get(a.jobId)!;
      ensure(a.state === 'running' && a.heartbeatAt === now && a.leaseExpiresAt === now + job.heartbeatTimeoutMs, '7', () => `heartbeat left attempt ${id} as ${JSON.stringify(a)}`);
    }
    for (const [id, a] of before.attemptById) {
      if (expected.includes(id)) continue;
      ensure(isDeepStrictEqual(next.attemptById.get(id), a), '3', () => `heartbeat changed attempt ${id}, which it did not extend`);
    }
    return false;
  }

  /** A lease reference for a report: the right one, a stale one, a wrong one, or a missing attempt. */
  private pickRef(pick: number, choice: LeaseChoice): LeaseRef | null {
    if (choice === 'missing') return { attemptId: `0000000000NOSUCHATTEMPT${pick % 100}`, lease: 'ab'.repeat(16) };
    const all = this.ledger.assignmentOrder;
    if (all.length === 0) return null;
    const isLive = (id: string): boolean => {
      const a = this.before.attemptById.get(id);
      return a !== undefined && live(a);
    };
    const liveIds = all.filter(isLive);
    const ended = all.filter((id) => !isLive(id));
    const pool = choice === 'right' && liveIds.length > 0 ? liveIds : choice === 'stale' && ended.length > 0 ? ended : all;
    const id = pool[pick % pool.length]!;
    const lease = this.ledger.assignments.get(id)!.lease;
    if (choice !== 'wrong') return { attemptId: id, lease };
    const other = all.map((x) => this.ledger.assignments.get(x)!.lease).find((l) => l !== lease);
    return { attemptId: id, lease: other ?? wrongLease(lease) };
  }

  /** What a report under `ref` must do: succeed, or fail with this code and change nothing. */
  private expectedReport(ref: LeaseRef): 'ok' | ErrorCode {
    const a = this.before.attemptById.get(ref.attemptId);
    if (!a) return 'ATTEMPT_NOT_FOUND';
    if (this.ledger.assignments.get(ref.attemptId)?.lease !== ref.lease) return 'STALE_LEASE';
    return live(a) && a.leaseExpiresAt >= this.now ? 'ok' : 'STALE_LEASE';
  }

  private async report(op: Extract<Op, { kind: 'progress' | 'complete' | 'fail' }>): Promise<boolean | typeof SKIP> {
    const ref = this.pickRef(op.pick, op.lease);
    if (!ref) return SKIP;
    const expected = this.expectedReport(ref);
    const call = (): Promise<unknown> => {
      if (op.kind === 'progress') return this.store.progress({ ...ref, progress: { at: this.now } });
      if (op.kind === 'complete') {
        const job = this.before.jobById.get(this.before.attemptById.get(ref.attemptId)?.jobId ?? '');
        const trace = job?.verify?.mode === 'trace' ? traceOf(op.result) : null;
        return this.store.complete({ ...ref, result: resultValue(op.result), ...(trace ? { trace } : {}) });
      }
      return this.store.fail({ ...ref, error: { code: 'HANDLER_ERROR', message: 'boom' }, retryable: op.retryable });
    };
    this.count(`${op.kind}.${op.lease}.${expected}`);
    if (expected !== 'ok') {
      await expectError(call(), [expected], `${op.kind} with a ${op.lease} lease`);
      return true;
    }
    const before = this.before;
    const prevAttempt = before.attemptById.get(ref.attemptId)!;
    const prevJob = before.jobById.get(prevAttempt.jobId)!;
    const out = await call();
    const next = await readSnapshot(this.store, this.now);
    const a = next.attemptById.get(ref.attemptId)!;
    const job = next.jobById.get(a.jobId)!;
    if (op.kind === 'progress') {
      ensure(a.state === 'running' && isDeepStrictEqual(a.progress, { at: this.now }) && a.leaseExpiresAt === this.now + job.heartbeatTimeoutMs, '7', () => `progress left attempt ${a.id} as ${JSON.stringify(a)}`);
      return false;
    }
    const settled = out as { job: Job };
    ensure(isDeepStrictEqual(settled.job, job), op.kind, () => `${op.kind} answered ${JSON.stringify(settled.job)}, the store holds ${JSON.stringify(job)}`);
    if (op.kind === 'complete') {
      this.completedNow = a.id;
      this.ledger.completed.set(a.id, resultValue(op.result));
      ensure(a.state === 'completed' || a.state === 'rejected', '2', () => `complete left attempt ${a.id} ${a.state}`);
      if (job.replicas === 1) {
        ensure(job.state === 'succeeded' && isDeepStrictEqual(job.result, resultValue(op.result)), '2', () => `complete under the current lease left job ${job.id} ${job.state} with ${JSON.stringify(job.result)}`);
      }
    } else {
      this.ledger.failed.add(a.id);
      ensure(a.state === 'failed' && a.error?.code === 'HANDLER_ERROR', '7', () => `fail left attempt ${a.id} as ${JSON.stringify(a)}`);
      // A replicated job is not ended by one replica's non-retryable error: another worker runs that replica.
      const exhausted = (!op.retryable && prevJob.replicas === 1) || prevJob.failures + 1 >= prevJob.maxAttempts;
      ensure(job.failures === prevJob.failures + 1, '7', () => `fail counted failures ${prevJob.failures} -> ${job.failures}`);
      if (exhausted) ensure(job.state === 'failed', '7', () => `job ${job.id} is ${job.state} after a fail with no retry left`);
      else if (prevJob.replicas === 1) ensure(job.state === 'queued' && job.runAt >= this.now, '7', () => `job ${job.id} is ${job.state} after a retryable fail with retries left`);
    }
    return false;
  }

  // ---- Sweeps ----

  private async expireAttempts(limit: number): Promise<void> {
    const before = this.before;
    const now = this.now;
    const out = await this.store.expireAttempts({ limit });
    for (const e of out.endedAttempts) {
      const a = before.attemptById.get(e.attemptId);
      ensure(a && live(a) && a.workerId === e.workerId, '7', () => `the sweep ended ${JSON.stringify(e)}, which was not live`);
      const due = e.reason === 'LEASE_LOST' ? a.leaseExpiresAt < now : a.timeoutAt <= now;
      ensure(due, '7', () => `the sweep ended attempt ${a.id} (${e.reason}) before it was due: ${JSON.stringify(a)} at ${now}`);
    }
    const next = await readSnapshot(this.store, now);
    const overdue = [...next.attemptById.values()].filter((a) => live(a) && (a.leaseExpiresAt < now || a.timeoutAt <= now));
    if (limit >= before.attemptById.size) {
      ensure(overdue.length === 0, '7', () => `live attempts past their lease or timeout after a full sweep: ${overdue.map((a) => a.id)}`);
    }
    for (const a of next.attemptById.values()) {
      if (a.state === 'lost') ensure(a.error?.code === 'LEASE_LOST', '7', () => `lost attempt ${a.id} with error ${JSON.stringify(a.error)}`);
    }
  }

  private async expireDeadlines(limit: number): Promise<void> {
    const before = this.before;
    const now = this.now;
    const due = before.jobs.filter((j) => (j.state === 'waiting' || j.state === 'queued') && j.deadline !== null && j.deadline <= now);
    await this.store.expireDeadlines({ limit });
    if (limit < due.length) return;
    const next = await readSnapshot(this.store, now);
    for (const j of due) {
      const cur = next.jobById.get(j.id)!;
      ensure(isTerminalJobState(cur.state), '7', () => `job ${j.id} passed its deadline unstarted but is ${cur.state} after the sweep`);
    }
  }

  /**
   * Backups asked for name live attempts that are no backups and were never
   * backed up, of running jobs that wanted nothing else (each now wants one
   * more), and stay within their share of the live attempts.
   */
  private async speculate(multiplier: number, shareMax: number): Promise<void> {
    const before = this.before;
    const settings = () => ({ enabled: true, quantile: 0, multiplier });
    const out = await this.store.speculate({ settings, shareMax, backupsMin: 1, minRunMs: 0 });
    const liveNow = [...before.attemptById.values()].filter(live);
    const backups = liveNow.filter((a) => a.backupOf !== null).length;
    const cap = Math.max(1, Math.floor(shareMax * liveNow.length));
    ensure(out.backups.length === 0 || backups + out.backups.length <= cap, 'backups', () => `${out.backups.length} backups asked with ${backups} of ${liveNow.length} live attempts backups already (cap ${cap})`);
    const next = await readSnapshot(this.store, this.now);
    for (const b of out.backups) {
      const a = before.attemptById.get(b.attemptId);
      const job = before.jobById.get(b.jobId);
      const backedUp = [...before.attemptById.values()].some((x) => x.backupOf === b.attemptId);
      ensure(a && live(a) && a.jobId === b.jobId && a.backupOf === null && !backedUp, 'backups', () => `a backup of ${JSON.stringify(a)}, which may not have one`);
      ensure(job?.state === 'running' && job.want === 0 && next.jobById.get(b.jobId)?.want === 1, 'backups', () => `job ${b.jobId} wanted ${job?.want} before its backup, ${next.jobById.get(b.jobId)?.want} after`);
    }
    this.count('speculate.backups', out.backups.length);
  }

  // ---- Liveness ----

  /** With fresh capable workers, heartbeats, completes and sweeps, every job ends. */
  async drainToEnd(): Promise<void> {
    const fresh: string[] = [];
    for (const zone of [...ZONES, null]) {
      for (let i = 0; i < 6; i++) {
        const id = `drain-${zone ?? 'any'}-${i}`;
        await this.upsert({
          id,
          name: id,
          labels: zone === null ? {} : { zone },
          cores: 64,
          memoryMb: 65_536,
          gpuIds: [0, 1, 2, 3],
          queues: { 'q.a': 8, 'q.b': 8 },
          keys: [...KEYS],
        });
        fresh.push(id);
      }
    }
    const workers = [...this.ledger.workerOrder, ...fresh];
    for (const w of this.ledger.workerOrder) if (this.ledger.draining.has(w)) await this.connection({ kind: 'drain', worker: this.ledger.workerOrder.indexOf(w), draining: false });
    const held = new Map<string, Assignment>();
    for (const a of this.before.attemptById.values()) if (live(a)) held.set(a.id, this.ledger.assignments.get(a.id)!);
    const result = (ref: { jobId: string }): Json => ({ drained: ref.jobId });
    const outcome = await drainToTerminal(this.store, this.ctx.clock, {
      workerIds: workers,
      place: this.place,
      held,
      result,
      // Honest drain workers send alike traces: a trace-verified job then ends on its vote.
      trace: traceOf(0)!,
      onAssign: (a) => {
        this.ledger.assignments.set(a.attemptId, a);
        this.ledger.assignmentOrder.push(a.attemptId);
      },
      onComplete: (attemptId, jobId) => void this.ledger.completed.set(attemptId, result({ jobId })),
      afterRound: async (round) => void (await this.check(`drain round ${round}`, false, false)),
    });
    this.ledger.disconnected.clear();
    this.count('drain.rounds', outcome.rounds);
    for (const j of this.before.jobs) this.count(`end.${j.state}${j.replicas > 1 ? '.replicated' : ''}${j.solo ? '.solo' : ''}${j.verify ? `.${j.verify.mode}` : ''}`);
    for (const w of this.before.workers) if (w.reputation.invalid > 0) this.count(w.quarantined ? 'end.worker.quarantined' : 'end.worker.judged-invalid');
    ensure(outcome.open.length === 0, 'liveness', () => `after ${outcome.rounds} rounds these jobs never ended: ${outcome.open.map((j) => `${j.id} ${j.state} ${JSON.stringify(j)}`).join('; ')}`);
  }
}
