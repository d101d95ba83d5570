// One run of a scenario under one placement policy: a discrete-event loop in
// virtual time that drives the real SQLite store (in memory), the
// coordinator's real dispatcher and sweeper, and simulated workers. The store
// decides what is ready (dependencies, backoff), who may run it (claim, with
// the policy as its PlaceFn), when a lease is lost, when a deadline passes;
// the dispatcher (src/coordinator/dispatcher.ts) claims and hands out work as
// in the coordinator; the sweeper (src/coordinator/sweeper.ts) sweeps on its
// beat and wakes the dispatcher for delayed jobs, on the simulator's clock.
// The workers only heartbeat, run their attempts for as long as the job's
// reference time times their factor, report, hold and release keys, and
// suffer the faults.
//
// The simulator stands where the coordinator's sessions stand, and asks for a
// dispatch where the coordinator kicks its dispatcher: after a submit, a
// completion, a revived heartbeat, a registration, a sweep that ended an
// attempt or requeued a job, the wake-up for a delayed job. Everything that
// happens at one virtual instant reaches the coordinator together, as reports
// that land in one group commit do: their kicks coalesce into one dispatch
// when the instant is over, whose first claim sees them all. Each step waits
// for the dispatch and sweep passes it started, so that a run replays exactly.
import { Dispatcher, freesCapacity } from '../coordinator/dispatcher.ts';
import { everyWorker } from '../coordinator/open-slots.ts';
import { HintsSource } from '../coordinator/hints.ts';
import { Sweeper } from '../coordinator/sweeper.ts';
import { normalizeJob, speculationOf } from '../coordinator/validate.ts';
import { openSqliteStore } from '../store/sqlite/store.ts';
import type { Change, Store, SweepResult } from '../store/store.ts';
import { seededRandom } from '../types/clock.ts';
import { isGafferError } from '../types/errors.ts';
import { LIMITS } from '../types/limits.ts';
import type { Assignment, JobSpec, NewJob, PlaceFn, WorkerSpec } from '../types/model.ts';
import { isTerminalJobState, type JobState } from '../types/states.ts';
import { factorOf, resourceClasses } from './bound.ts';
import { SimClock } from './clock.ts';
import { EventQueue } from './heap.ts';
import type { Fault, FaultKind, Policy, RunResult, Scenario, SimJob, SimWorker } from './model.ts';

/** Virtual time at which every simulation starts. */
export const SIM_START_MS = Date.UTC(2026, 0, 1);

/** Attempts per job before the store gives up: faults must not fail a job for good. */
const SIM_MAX_ATTEMPTS = 20;

type SimEvent =
  | { kind: 'release'; jobs: SimJob[] }
  | { kind: 'done'; worker: string; attemptId: string; token: number }
  | { kind: 'heartbeat'; worker: string; generation: number }
  | { kind: 'fault'; fault: Fault }
  | { kind: 'recover'; fault: Fault };

/** An attempt a simulated worker holds: it progresses only while the worker is up. */
interface Held {
  assignment: Assignment;
  remainingMs: number;
  /** Its whole run time on this worker, for the progress it reports. */
  totalMs: number;
  /** When it last started progressing, or null while frozen (worker stalled, or not yet started). */
  sinceMs: number | null;
  /** Bumped whenever its completion is rescheduled; a `done` event with an older token is void. */
  token: number;
}

interface WorkerRun {
  spec: SimWorker;
  state: 'up' | 'stalled' | 'gone';
  held: Map<string, Held>;
  keys: Set<string>;
  /** Bays taken by data sets it holds. */
  occupied: number;
  /** Slots of the bay-gated queue it declared last. */
  declaredGated: number;
  /** Heartbeat chain generation: a stall or departure ends the chain, a recovery starts a new one. */
  generation: number;
  /** Hanging (the `hang` fault): it heartbeats, but no attempt of it makes progress. */
  hung: boolean;
}

interface JobRun {
  sim: SimJob;
  id: string;
  state: JobState;
  endedAt: number | null;
}

export interface RunOptions {
  /** True: the coordinator's speculative backups run (engine/speculate.ts), and workers report their progress. Default false. */
  speculation?: boolean;
}

export async function runScenario(scenario: Scenario, policy: Policy, options: RunOptions = {}): Promise<RunResult> {
  const run = new Run(scenario, policy, options.speculation === true);
  try {
    return await run.run();
  } finally {
    await run.close();
  }
}

class Run {
  private readonly clock = new SimClock(SIM_START_MS);
  private readonly store: Store;
  private readonly dispatcher: Dispatcher;
  private readonly sweeper: Sweeper;
  private readonly hints: HintsSource;
  private readonly events = new EventQueue<SimEvent>();
  private readonly workers = new Map<string, WorkerRun>();
  private readonly jobs = new Map<string, JobRun>();
  private readonly idOf = new Map<string, string>();
  private readonly scenario: Scenario;
  private readonly policyName: string;
  private readonly place: PlaceFn;
  private readyAt = new Map<string, number>();
  private readonly waits: number[] = [];
  private open: number;
  /** Something at this instant would have made the coordinator kick its dispatcher: kick once the instant is over. */
  private kickPending = false;
  /** The first error a dispatch or sweep pass reported: a run stops on it. */
  private failure: { err: unknown } | null = null;
  private stale = 0;
  private readonly faults: Record<FaultKind, number> = { stall: 0, leave: 0, hang: 0 };

  /** Speculative backups on: the sweeper asks for them, and workers report progress with each heartbeat. */
  private readonly speculation: boolean;

  constructor(scenario: Scenario, policy: Policy, speculation: boolean) {
    this.scenario = scenario;
    this.speculation = speculation;
    this.policyName = policy.name;
    this.store = openSqliteStore({
      path: ':memory:',
      clock: this.clock,
      random: seededRandom(scenario.seed ^ 0x51ed),
      workerOfflineAfterMs: scenario.settings.workerOfflineAfterMs,
    });
    this.open = scenario.jobs.length;
    // The policy decides; the simulator only notes when each candidate became ready, to measure waits.
    this.hints = new HintsSource({ store: this.store, clock: this.clock });
    const hinted = policy.hinted;
    this.place = (input) => {
      this.readyAt = new Map(input.candidates.map((c) => [c.jobId, c.readyAt]));
      return hinted !== undefined ? hinted(input, this.hints.hints()) : policy.place(input);
    };
    const onError = (err: unknown): void => void (this.failure ??= { err });
    this.dispatcher = new Dispatcher({
      store: this.store,
      place: this.place,
      // Every connected worker, stalled ones too: the coordinator cannot tell a stall from a quiet worker until its heartbeats stop counting.
      pool: everyWorker(() => [...this.workers.values()].filter((w) => w.state !== 'gone').map((w) => w.spec.name)),
      deliver: (assignments) => assignments.forEach((a) => this.assign(a)),
      clock: this.clock,
      afterLoop: (lastClaimAtMs) => this.sweeper.armWake(lastClaimAtMs),
      onError,
    });
    this.sweeper = new Sweeper({
      store: this.store,
      clock: this.clock,
      sweepIntervalMs: scenario.settings.sweepIntervalMs,
      onSwept: (r) => this.swept(r),
      onWake: () => this.askDispatch(),
      // The coordinator's default settings for every queue, looked at on the heartbeat beat (the progress it judges by comes no faster).
      ...(speculation ? { speculation: { settings: () => speculationOf(undefined, undefined), intervalMs: scenario.settings.heartbeatIntervalMs } } : {}),
      onSpeculated: () => this.askDispatch(),
      onError,
    });
  }

  async close(): Promise<void> {
    this.sweeper.stop();
    this.dispatcher.stop();
    await this.passes();
    await this.store.close();
  }

  private get now(): number {
    return this.clock.now();
  }

  private at(offsetMs: number, event: SimEvent): void {
    this.events.push(SIM_START_MS + offsetMs, event);
  }

  private after(delayMs: number, event: SimEvent): void {
    this.events.push(this.now + delayMs, event);
  }

  async run(): Promise<RunResult> {
    const s = this.scenario;
    for (const spec of s.workers) {
      const w: WorkerRun = { spec, state: 'up', held: new Map(), keys: new Set(), occupied: 0, declaredGated: 0, generation: 0, hung: false };
      w.declaredGated = gatedSlots(w);
      this.workers.set(spec.name, w);
      await this.register(w);
    }
    const byRelease = new Map<number, SimJob[]>();
    for (const j of s.jobs) {
      const group = byRelease.get(j.releaseMs);
      if (group) group.push(j);
      else byRelease.set(j.releaseMs, [j]);
    }
    for (const [t, jobs] of [...byRelease].sort((a, b) => a[0] - b[0])) this.at(t, { kind: 'release', jobs });
    for (const fault of s.faults) this.at(fault.atMs, { kind: 'fault', fault });
    const n = s.workers.length;
    const beatMs = s.settings.heartbeatIntervalMs;
    s.workers.forEach((w, i) => this.at(Math.round((beatMs * (i + 1)) / (n + 1)), { kind: 'heartbeat', worker: w.name, generation: 0 }));
    this.sweeper.start();
    this.dispatcher.start();
    await this.settle();
    await this.loop();
    return this.result(this.policyName, s);
  }

  /**
   * Runs the simulator's events and the clock's timers (the sweeper's) in
   * time order, timers first at equal times; after each, the sweep passes it
   * started run to their end. When an instant is over, one dispatch if
   * anything in it asked for one.
   */
  private async loop(): Promise<void> {
    const horizon = SIM_START_MS + this.scenario.settings.horizonMs;
    while (this.open > 0) {
      const eventMs = this.events.peekMs();
      const timerMs = this.clock.nextDueMs();
      const atMs = Math.min(eventMs, timerMs);
      if (atMs === Infinity) throw new Error(`simulation ran out of events with ${this.open} jobs unfinished`);
      if (atMs > horizon) {
        throw new Error(`simulation passed its horizon (${this.scenario.settings.horizonMs} ms) with ${this.open} jobs unfinished`);
      }
      if (timerMs <= eventMs) {
        await this.clock.virtual.advanceAsync(timerMs - this.now, () => this.settle());
      } else {
        const next = this.events.pop()!;
        this.clock.virtual.advance(next.atMs - this.now);
        await this.handle(next.event);
        await this.settle();
      }
      if (this.kickPending && Math.min(this.events.peekMs(), this.clock.nextDueMs()) > this.now) {
        this.kickPending = false;
        await this.hints.refresh();
        this.dispatcher.kick();
        await this.settle();
      }
    }
  }

  /** Where the coordinator would kick its dispatcher. */
  private askDispatch(): void {
    this.kickPending = true;
  }

  /** Waits until no dispatch or sweep pass runs; throws what one of them failed with. */
  private async settle(): Promise<void> {
    await this.passes();
    if (this.failure) throw this.failure.err;
  }

  private async passes(): Promise<void> {
    for (;;) {
      const running = [this.dispatcher.current(), this.sweeper.current()].filter((p) => p !== null);
      if (running.length === 0) return;
      await Promise.all(running);
    }
  }

  private async handle(e: SimEvent): Promise<void> {
    switch (e.kind) {
      case 'release':
        return this.release(e.jobs);
      case 'done':
        return this.done(e.worker, e.attemptId, e.token);
      case 'heartbeat':
        return this.heartbeat(e.worker, e.generation);
      case 'fault':
        return this.fault(e.fault);
      case 'recover':
        return this.recover(e.fault);
    }
  }

  // ---- The workload ----

  /** Submits jobs in batches, parents before children, so each child can name its parents' ids. */
  private async release(jobs: SimJob[]): Promise<void> {
    let pending = jobs;
    while (pending.length > 0) {
      const ready = pending.filter((j) => j.parents.every((p) => this.idOf.has(p)));
      if (ready.length === 0) throw new Error(`jobs ${pending.map((j) => j.key).join(', ')} name parents never submitted`);
      for (let i = 0; i < ready.length; i += LIMITS.submitBatchMaxJobs) {
        const batch = ready.slice(i, i + LIMITS.submitBatchMaxJobs);
        const results = await this.store.submit({ jobs: batch.map((j) => this.newJob(j)) });
        results.forEach((r, k) => {
          const sim = batch[k]!;
          this.idOf.set(sim.key, r.job.id);
          this.jobs.set(r.job.id, { sim, id: r.job.id, state: r.job.state, endedAt: null });
          this.ended(r.job.id, r.job.state);
          if (r.created && r.job.state === 'queued') this.askDispatch();
        });
      }
      const done = new Set(ready);
      pending = pending.filter((j) => !done.has(j));
    }
  }

  private newJob(j: SimJob): NewJob {
    const q = this.scenario.queues[j.queue];
    if (q === undefined) throw new Error(`job ${j.key}: queue ${j.queue} is not in the scenario`);
    const spec: JobSpec = {
      queue: j.queue,
      payload: { job: j.key },
      priority: j.priority,
      timeoutMs: q.timeoutMs,
      heartbeatTimeoutMs: q.heartbeatTimeoutMs,
      maxAttempts: SIM_MAX_ATTEMPTS,
      requires: q.requires,
      dependsOn: j.parents.map((p) => this.idOf.get(p)!),
    };
    if (j.affinity !== null) spec.affinity = j.affinity;
    if (j.deadlineMs !== null) spec.deadline = SIM_START_MS + j.deadlineMs;
    return normalizeJob(spec);
  }

  private ended(jobId: string, state: JobState): void {
    const job = this.jobs.get(jobId);
    if (job === undefined) return;
    job.state = state;
    if (isTerminalJobState(state) && job.endedAt === null) {
      job.endedAt = this.now;
      this.open -= 1;
    }
  }

  /** What a report changed; as the coordinator tells them, workers stop the attempts it revoked. */
  private applyChanges(changes: readonly Change[]): void {
    for (const c of changes) {
      this.ended(c.jobId, c.state);
      for (const r of c.cancelledAttempts) {
        this.workers.get(r.workerId)?.held.delete(r.attemptId);
        this.hints.ended(r.attemptId, false);
      }
    }
  }

  /** What the sweeper changed; as in the coordinator, a sweep that freed a slot or requeued a job kicks the dispatcher. */
  private swept(r: SweepResult): void {
    // The coordinator stops counting on an attempt the sweep ended (its worker learns at its next heartbeat).
    for (const e of r.endedAttempts) this.hints.ended(e.attemptId, false);
    this.applyChanges(r.changes);
    if (freesCapacity(r.changes, r.endedAttempts)) this.askDispatch();
  }

  // ---- Dispatch ----

  private assign(a: Assignment): void {
    const w = this.mustWorker(a.workerId);
    const job = this.jobs.get(a.jobId);
    if (job === undefined) throw new Error(`claim handed out job ${a.jobId}, which the simulation did not submit`);
    this.waits.push(this.now - (this.readyAt.get(a.jobId) ?? this.now));
    this.hints.leased([a]);
    const runMs = runTimeMs(job.sim, w.spec);
    const held: Held = { assignment: a, remainingMs: runMs, totalMs: runMs, sinceMs: null, token: 0 };
    w.held.set(a.attemptId, held);
    if (w.state === 'up' && !w.hung) this.start(w, held);
  }

  private start(w: WorkerRun, h: Held): void {
    h.sinceMs = this.now;
    h.token += 1;
    this.after(h.remainingMs, { kind: 'done', worker: w.spec.name, attemptId: h.assignment.attemptId, token: h.token });
  }

  // ---- Workers ----

  private async done(workerId: string, attemptId: string, token: number): Promise<void> {
    const w = this.mustWorker(workerId);
    const h = w.held.get(attemptId);
    if (h === undefined || h.token !== token || w.state !== 'up' || w.hung) return;
    w.held.delete(attemptId);
    const a = h.assignment;
    try {
      const out = await this.store.complete({ attemptId, lease: a.lease, result: { ok: true } });
      this.hints.ended(attemptId, true);
      this.ended(out.job.id, out.job.state);
      this.applyChanges(out.changes);
      this.askDispatch();
    } catch (err) {
      if (!isGafferError(err, 'STALE_LEASE')) throw err;
      this.hints.ended(attemptId, false);
      this.stale += 1;
      return;
    }
    const sim = this.jobs.get(a.jobId)!.sim;
    if (sim.holds !== undefined || sim.releases !== undefined) {
      if (sim.holds !== undefined) w.keys.add(sim.holds);
      if (sim.releases !== undefined) w.keys.delete(sim.releases);
      await this.store.updateWorkerKeys({
        workerId,
        ...(sim.holds !== undefined ? { hold: [sim.holds] } : {}),
        ...(sim.releases !== undefined ? { release: [sim.releases] } : {}),
      });
    }
    if (sim.bay !== undefined) {
      w.occupied += sim.bay === 'occupy' ? 1 : -1;
      await this.redeclare(w);
    }
  }

  /** Registers the worker as it is now; the coordinator notes its slots for the scheduler's hints. */
  private async register(w: WorkerRun): Promise<void> {
    const spec = declaration(w);
    await this.store.upsertWorker({ spec });
    this.hints.declare(w.spec.name, spec.queues);
  }

  /** A worker with bays declares as many slots of the gated queue as it has bays free. */
  private async redeclare(w: WorkerRun): Promise<void> {
    const slots = gatedSlots(w);
    if (slots === w.declaredGated || w.state !== 'up') return;
    w.declaredGated = slots;
    await this.register(w);
  }

  private async heartbeat(workerId: string, generation: number): Promise<void> {
    const w = this.mustWorker(workerId);
    if (generation !== w.generation || w.state !== 'up') return;
    await this.beat(w);
    this.after(this.scenario.settings.heartbeatIntervalMs, { kind: 'heartbeat', worker: workerId, generation });
  }

  /** Heartbeats naming the attempts the worker holds; it drops those the store says it lost. */
  private async beat(w: WorkerRun): Promise<void> {
    const attempts = [...w.held.values()].map((h) => ({ attemptId: h.assignment.attemptId, lease: h.assignment.lease }));
    const out = await this.store.heartbeat({ workerId: w.spec.name, attempts });
    for (const id of out.revoked) {
      w.held.delete(id);
      this.hints.ended(id, false);
    }
    if (this.speculation) await this.reportProgress(w);
    // A worker the sweeper had given up on is back: jobs may be waiting for it.
    if (out.revived) this.askDispatch();
  }

  /** The fraction of each held attempt done so far (a hung one's stands still), as a prover reports its rounds. */
  private async reportProgress(w: WorkerRun): Promise<void> {
    for (const h of [...w.held.values()]) {
      const remainingMs = h.remainingMs - (h.sinceMs === null ? 0 : this.now - h.sinceMs);
      const fraction = Math.min(1, Math.max(0, 1 - remainingMs / h.totalMs));
      try {
        await this.store.progress({ attemptId: h.assignment.attemptId, lease: h.assignment.lease, progress: { fraction } });
      } catch (err) {
        if (!isGafferError(err, 'STALE_LEASE')) throw err;
        w.held.delete(h.assignment.attemptId);
      }
    }
  }

  private async fault(f: Fault): Promise<void> {
    const w = this.mustWorker(f.worker);
    if (w.state !== 'up' || w.hung) return;
    this.faults[f.kind] += 1;
    if (f.kind === 'hang') {
      // Its heartbeats go on (the chain is not ended): only its attempts stand still.
      w.hung = true;
      this.freeze(w);
      this.after(f.durationMs, { kind: 'recover', fault: f });
      return;
    }
    w.generation += 1;
    if (f.kind === 'stall') {
      w.state = 'stalled';
      this.freeze(w);
    } else {
      w.state = 'gone';
      for (const id of w.held.keys()) this.hints.ended(id, false);
      w.held.clear();
      await this.store.disconnectWorker({ workerId: w.spec.name });
    }
    this.after(f.durationMs, { kind: 'recover', fault: f });
  }

  /** Its attempts stop where they are: their done events are void until they start again. */
  private freeze(w: WorkerRun): void {
    for (const h of w.held.values()) {
      if (h.sinceMs !== null) h.remainingMs -= this.now - h.sinceMs;
      h.sinceMs = null;
      h.token += 1;
    }
  }

  private async recover(f: Fault): Promise<void> {
    const w = this.mustWorker(f.worker);
    if (f.kind === 'hang') {
      w.hung = false;
      if (w.state === 'up') for (const h of w.held.values()) this.start(w, h);
      return;
    }
    w.state = 'up';
    w.generation += 1;
    if (f.kind === 'stall') {
      await this.beat(w);
      for (const h of w.held.values()) this.start(w, h);
    } else {
      w.declaredGated = gatedSlots(w);
      await this.register(w);
      this.askDispatch(); // attached again
    }
    this.after(this.scenario.settings.heartbeatIntervalMs, { kind: 'heartbeat', worker: w.spec.name, generation: w.generation });
  }

  private mustWorker(id: string): WorkerRun {
    const w = this.workers.get(id);
    if (w === undefined) throw new Error(`no simulated worker ${id}`);
    return w;
  }

  // ---- Figures ----

  private async result(policy: string, s: Scenario): Promise<RunResult> {
    let last = SIM_START_MS;
    const jobs = { total: this.jobs.size, succeeded: 0, failed: 0, expired: 0 };
    const deadlines = { total: 0, missed: 0 };
    for (const j of this.jobs.values()) {
      last = Math.max(last, j.endedAt ?? last);
      if (j.state === 'succeeded') jobs.succeeded += 1;
      else if (j.state === 'expired') jobs.expired += 1;
      else jobs.failed += 1;
      if (j.sim.deadlineMs !== null || j.sim.dueMs !== null) {
        deadlines.total += 1;
        const late = j.sim.dueMs !== null && (j.endedAt ?? Infinity) - SIM_START_MS > j.sim.dueMs;
        if (j.state !== 'succeeded' || late) deadlines.missed += 1;
      }
    }
    const makespanMs = last - SIM_START_MS;
    const attempts = { total: 0, completed: 0, lost: 0, timedOut: 0, stale: this.stale, backups: 0 };
    const classes = resourceClasses(s.queues, s.workers);
    const busy = new Map(classes.map((c) => [c.name, 0]));
    for (const j of this.jobs.values()) {
      for (const a of await this.store.listAttempts({ jobId: j.id })) {
        attempts.total += 1;
        if (a.backupOf !== null) attempts.backups += 1;
        if (a.state === 'completed') attempts.completed += 1;
        else if (a.state === 'lost') attempts.lost += 1;
        else if (a.state === 'failed') attempts.timedOut += 1;
        const heldMs = (a.finishedAt ?? last) - a.leasedAt;
        for (const c of classes) {
          const d = c.demand[a.queue];
          if (d !== undefined && c.units[a.workerId] !== undefined) busy.set(c.name, busy.get(c.name)! + d * heldMs);
        }
      }
    }
    const utilisation: Record<string, number> = {};
    for (const c of classes) {
      const units = Object.values(c.units).reduce((x, y) => x + y, 0);
      utilisation[c.name] = makespanMs > 0 && units > 0 ? busy.get(c.name)! / (units * makespanMs) : 0;
    }
    const sorted = [...this.waits].sort((a, b) => a - b);
    return {
      policy,
      makespanMs,
      jobs,
      attempts,
      waitMs: { p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted[sorted.length - 1] ?? 0 },
      deadlines,
      utilisation,
      unfinished: [...this.jobs.values()].filter((j) => j.state !== 'succeeded').map((j) => j.sim.key),
      faults: { ...this.faults },
    };
  }
}

/** Nearest-rank percentile of an ascending list; 0 for an empty one. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1]!;
}

export function runTimeMs(job: SimJob, w: SimWorker): number {
  return Math.max(1, Math.round(job.baseMs * factorOf(w, job.queue)));
}

function gatedSlots(w: WorkerRun): number {
  const bays = w.spec.bays;
  if (bays === undefined) return 0;
  return Math.max(0, Math.min(w.spec.queues[bays.queue] ?? 0, bays.count - w.occupied));
}

/** What the worker says about itself when it registers. */
function declaration(w: WorkerRun): WorkerSpec {
  const s = w.spec;
  const queues = { ...s.queues };
  if (s.bays !== undefined) queues[s.bays.queue] = w.declaredGated;
  return {
    id: s.name,
    name: s.name,
    labels: s.labels,
    cores: s.cores,
    memoryMb: s.memoryMb,
    gpuIds: Array.from({ length: s.gpus }, (_, i) => i),
    queues,
    keys: [...w.keys],
  };
}
