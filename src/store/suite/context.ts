// What every test of the store conformance suite shares: a fresh store per
// test on a fresh VirtualClock and seeded random source, closed afterwards,
// and helpers that each make one store call the way the coordinator would.
//
// Jobs are built with newJob (types/new-job.ts), which fills the defaults as
// the coordinator's validation does, and claims go through the real scheduler
// (`place`), so the store sees what it sees in production.
import { afterEach, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { place } from '../../scheduler/index.ts';
import type { TrustPolicy } from '../../trust/index.ts';
import { seededRandom, VirtualClock, type Random } from '../../types/clock.ts';
import { LIMITS, TRUST_DEFAULTS } from '../../types/limits.ts';
import type { Assignment, Attempt, Job, JobSpec, Json, NewJob, PlaceFn, Worker, WorkerSpec } from '../../types/model.ts';
import { newJob } from '../../types/new-job.ts';
import type { JobState } from '../../types/states.ts';
import type { Change, SettleResult, Store } from '../store.ts';

/** What a backend gets to open one store for one test. */
export interface StoreContext {
  clock: VirtualClock;
  random: Random;
  /** Trust policy overrides (TRUST_DEFAULTS otherwise). */
  trust?: Partial<TrustPolicy>;
}

export type OpenContractStore = (ctx: StoreContext) => Promise<Store>;

export interface StoreContractOptions {
  /**
   * A difference between backends: how a store answers a call naming text it
   * cannot hold (a NUL character, or a UTF-16 surrogate without its pair;
   * submit and worker validation refuse both, but an id in a URL may carry
   * one). 'not-found' (the default; SQLite, which stores any string): such an
   * id simply matches nothing. 'refused' (PostgreSQL, whose text type holds
   * neither): the store refuses the call with INVALID_INPUT instead of sending
   * it, since a lone surrogate would reach the server as U+FFFD and match a
   * different string.
   */
  unstorableText?: 'not-found' | 'refused';
}

/** The seed every test starts from, so that a failure replays exactly. */
const SEED = 0x5eed;
export const SECOND = 1000;
export const MINUTE = 60 * SECOND;
export const EXTRA_REPLICAS_MAX = TRUST_DEFAULTS.extraReplicasMax;

const placeFn: PlaceFn = (input) => place(input);

/**
 * The suite's trust policy: the defaults, but a new worker may hold all it
 * declares at once, so that tests of other rules claim as many attempts as
 * they give slots, and a vote won by new workers needs no larger lead, so
 * that tests of voting see the job's own margin. The tests of slow start and
 * of probation reopen with the defaults; the invariant properties run with
 * them throughout.
 */
export const SUITE_TRUST: Partial<TrustPolicy> = { creditInitialSlots: LIMITS.workerSlotsMax, probationMarginBonus: 0 };

/** The running test's store and clock, and the helpers that drive them. */
export interface ContractContext {
  /** The test's store: opened before each test, closed after it. */
  readonly store: Store;
  /** The test's clock: time moves only when the test advances it. */
  readonly clock: VirtualClock;
  /** The clock's time when the test began. */
  readonly t0: number;
  readonly options: StoreContractOptions;
  /** Closes the test's store and opens a fresh one on the same clock, with these trust overrides (over SUITE_TRUST). */
  reopen(trust: Partial<TrustPolicy>): Promise<void>;
  /** A complete NewJob on queue `q`, defaults filled, with `over` applied. */
  spec(over?: Partial<JobSpec>): NewJob;
  /** Submits one job per spec in one call; each must be new. */
  submit(...overs: Partial<JobSpec>[]): Promise<Job[]>;
  submitOne(over?: Partial<JobSpec>): Promise<Job>;
  /** Registers (or reconnects) a worker serving `q` with 4 slots, 16 cores and 64 GiB, unless `over` says otherwise. */
  addWorker(id: string, over?: Partial<WorkerSpec>): Promise<Worker>;
  claim(workerIds: string | string[], maxJobs?: number): Promise<Assignment[]>;
  /** A claim that must lease exactly one attempt. */
  claimOne(workerIds: string | string[]): Promise<Assignment>;
  /** A job that must exist. */
  getJob(id: string): Promise<Job>;
  /** An attempt that must exist. */
  attemptOf(a: { jobId: string; attemptId: string }): Promise<Attempt>;
  ref(a: Assignment): { attemptId: string; lease: string };
  complete(a: Assignment, result?: Json): Promise<SettleResult>;
  fail(a: Assignment, message?: string, retryable?: boolean): Promise<SettleResult>;
}

/**
 * Registers, in the enclosing describe, the hooks that open a fresh store
 * before each test and close it after; returns the context the tests use.
 */
export function contractContext(open: OpenContractStore, options: StoreContractOptions): ContractContext {
  let store!: Store;
  let clock!: VirtualClock;
  let t0 = 0;

  beforeEach(async () => {
    clock = new VirtualClock();
    t0 = clock.now();
    store = await open({ clock, random: seededRandom(SEED), trust: SUITE_TRUST });
  });

  afterEach(async () => {
    await store.close();
  });

  const spec = (over: Partial<JobSpec> = {}) => newJob({ queue: 'q', ...over });

  async function submit(...overs: Partial<JobSpec>[]): Promise<Job[]> {
    const out = await store.submit({ jobs: overs.map((o) => spec(o)) });
    assert.ok(out.every((r) => r.created));
    return out.map((r) => r.job);
  }

  async function submitOne(over: Partial<JobSpec> = {}): Promise<Job> {
    const [job] = await submit(over);
    assert.ok(job);
    return job;
  }

  function addWorker(id: string, over: Partial<WorkerSpec> = {}): Promise<Worker> {
    const w: WorkerSpec = {
      id,
      name: id,
      labels: {},
      cores: 16,
      memoryMb: 65_536,
      gpuIds: [],
      queues: { q: 4 },
      keys: [],
      ...over,
    };
    return store.upsertWorker({ spec: w });
  }

  function claim(workerIds: string | string[], maxJobs = 100): Promise<Assignment[]> {
    const ids = typeof workerIds === 'string' ? [workerIds] : workerIds;
    return store.claim({ workerIds: ids, place: placeFn, maxJobs });
  }

  async function claimOne(workerIds: string | string[]): Promise<Assignment> {
    const out = await claim(workerIds, 1);
    assert.equal(out.length, 1, 'one attempt leased');
    return out[0]!;
  }

  async function getJob(id: string): Promise<Job> {
    const job = await store.getJob({ id });
    assert.ok(job, `job ${id} exists`);
    return job;
  }

  async function attemptOf(a: { jobId: string; attemptId: string }): Promise<Attempt> {
    const found = (await store.listAttempts({ jobId: a.jobId })).find((x) => x.id === a.attemptId);
    assert.ok(found, `attempt ${a.attemptId} exists`);
    return found;
  }

  const ref = (a: Assignment) => ({ attemptId: a.attemptId, lease: a.lease });

  function complete(a: Assignment, result: Json = { ok: true }): Promise<SettleResult> {
    return store.complete({ ...ref(a), result });
  }

  function fail(a: Assignment, message = 'boom', retryable = true): Promise<SettleResult> {
    return store.fail({ ...ref(a), error: { code: 'HANDLER_ERROR', message }, retryable });
  }

  return {
    get store() {
      return store;
    },
    get clock() {
      return clock;
    },
    get t0() {
      return t0;
    },
    options,
    async reopen(trust) {
      await store.close();
      store = await open({ clock, random: seededRandom(SEED), trust: { ...SUITE_TRUST, ...trust } });
    },
    spec,
    submit,
    submitOne,
    addWorker,
    claim,
    claimOne,
    getJob,
    attemptOf,
    ref,
    complete,
    fail,
  };
}

// ---- Plain helpers: no store involved ----

export const ids = (xs: readonly { id: string }[]) => xs.map((x) => x.id);
export const jobIds = (xs: readonly { jobId: string }[]) => xs.map((x) => x.jobId);
export const sorted = (xs: readonly string[]) => [...xs].sort();
export const byJobId = (changes: readonly Change[]) => [...changes].sort((a, b) => (a.jobId < b.jobId ? -1 : 1));
export const change = (jobId: string, state: JobState, cancelledAttempts: Change['cancelledAttempts'] = []): Change => ({
  jobId,
  state,
  cancelledAttempts,
});
