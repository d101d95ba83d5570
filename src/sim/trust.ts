// The trust bench's simulation: a pool of workers, some honest, some
// colluding (they all give the same wrong answer), some cheating on their own
// (a wrong answer of their own each time), runs replicated jobs against the
// real store (SQLite in memory) and the real scheduler, in virtual time from
// one seed. It counts what the rules let through: wrong results accepted,
// jobs each bad worker took part in before its quarantine, honest workers
// quarantined, attempts per job.
import { createHash } from 'node:crypto';
import { place } from '../scheduler/index.ts';
import { openSqliteStore } from '../store/sqlite/store.ts';
import type { Store } from '../store/store.ts';
import type { TrustPolicy } from '../trust/index.ts';
import { seededRandom, VirtualClock, type Random } from '../types/clock.ts';
import { isGafferError } from '../types/errors.ts';
import type { Assignment, Json, WorkerSpec } from '../types/model.ts';
import { newJob } from '../types/new-job.ts';

export type Behaviour = 'honest' | 'colluder' | 'cheat';

export interface TrustScenario {
  name: string;
  seed: number;
  jobs: number;
  /** Per worker kind: how many, and how long one job takes them (ms, ±20 % jitter). */
  honest: { count: number; runMs: number };
  colluders: { count: number; runMs: number };
  cheats: { count: number; runMs: number };
  replicas: number;
  adaptive: boolean;
  /** Trust policy overrides (defaults otherwise). */
  trust?: Partial<TrustPolicy>;
}

/** Bounds of one run, so that a scenario that cannot finish still stops. */
export const TRUST_SIM_BOUNDS = {
  /** Submits go in batches of this many jobs. */
  submitBatchJobs: 500,
  /** Ready jobs kept queued ahead of the pool. */
  backlogJobs: 200,
  /** Events (claims and completions) before a run gives up. */
  maxEvents: 2_000_000,
  /** Every worker heartbeats at least this often (virtual time). */
  heartbeatIntervalMs: 5_000,
} as const;

export interface WorkerOutcome {
  id: string;
  behaviour: Behaviour;
  quarantined: boolean;
  /** Jobs it took part in (attempts leased to it) before it was quarantined, or in all. */
  jobsBeforeQuarantine: number;
}

export interface TrustOutcome {
  scenario: string;
  jobs: number;
  succeeded: number;
  wrongAccepted: number;
  failed: number;
  /** Attempts leased per job, over all jobs. */
  attemptsPerJob: number;
  honestQuarantined: number;
  badQuarantined: number;
  bad: number;
  /** Most jobs a bad worker took part in before its quarantine (all it took, if never quarantined). */
  worstJobsToQuarantine: number;
  makespanMs: number;
  workers: WorkerOutcome[];
}

interface SimWorker {
  id: string;
  behaviour: Behaviour;
  runMs: number;
  slots: number;
  busy: number;
  taken: number;
}

interface Running {
  at: number;
  a: Assignment;
}

/** The honest answer to a job's payload; colluders agree on one wrong answer, cheats each make up their own. */
function answer(behaviour: Behaviour, payload: Json, random: Random): Json {
  const truth = createHash('sha256').update(JSON.stringify(payload)).digest('hex').slice(0, 16);
  if (behaviour === 'honest') return { truth };
  if (behaviour === 'colluder') return { truth: `colluded-${truth}` };
  return { truth: `cheat-${random.next().toString(36).slice(2)}` };
}

function makeWorkers(s: TrustScenario): SimWorker[] {
  const kinds: [Behaviour, { count: number; runMs: number }][] = [
    ['honest', s.honest],
    ['colluder', s.colluders],
    ['cheat', s.cheats],
  ];
  return kinds.flatMap(([behaviour, k]) =>
    Array.from({ length: k.count }, (_, i) => ({ id: `${behaviour}-${i + 1}`, behaviour, runMs: k.runMs, slots: 1, busy: 0, taken: 0 })),
  );
}

/** Runs one scenario to the end (every job ended) or to its event bound. */
export async function runTrustScenario(s: TrustScenario): Promise<TrustOutcome> {
  const clock = new VirtualClock(Date.UTC(2026, 0, 1));
  const random = seededRandom(s.seed);
  const store = openSqliteStore({ path: ':memory:', clock, random: seededRandom(s.seed + 1), trust: s.trust ?? {} });
  try {
    return await drive(s, store, clock, random);
  } finally {
    await store.close();
  }
}

async function drive(s: TrustScenario, store: Store, clock: VirtualClock, random: Random): Promise<TrustOutcome> {
  const start = clock.now();
  const workers = makeWorkers(s);
  const byId = new Map(workers.map((w) => [w.id, w]));
  for (const w of workers) {
    // One operator per worker: at most one colluder per operator, as the bars assume.
    const spec: WorkerSpec = { id: w.id, name: w.id, labels: {}, cores: 4, memoryMb: 4096, gpuIds: [], queues: { prove: w.slots }, keys: [] };
    await store.upsertWorker({ spec, operator: `op-${w.id}` });
  }
  const payloads = new Map<string, Json>();
  let submitted = 0;
  let open = 0;
  const running: Running[] = [];
  let lastBeat = clock.now();
  for (let events = 0; events < TRUST_SIM_BOUNDS.maxEvents; events++) {
    while (submitted < s.jobs && open < TRUST_SIM_BOUNDS.backlogJobs) {
      const n = Math.min(TRUST_SIM_BOUNDS.submitBatchJobs, s.jobs - submitted);
      const specs = Array.from({ length: n }, (_, i) => newJob({ queue: 'prove', payload: { n: submitted + i }, replicas: s.replicas, adaptive: s.adaptive }));
      for (const r of await store.submit({ jobs: specs })) payloads.set(r.job.id, r.job.payload);
      submitted += n;
      open += n;
    }
    await claimForIdle(store, workers, running, clock, random);
    if (running.length === 0) {
      if (open === 0 && submitted >= s.jobs) break;
      clock.advance(TRUST_SIM_BOUNDS.heartbeatIntervalMs);
    } else {
      running.sort((x, y) => x.at - y.at || (x.a.attemptId < y.a.attemptId ? -1 : 1));
      const next = running.shift()!;
      if (next.at > clock.now()) clock.advance(next.at - clock.now());
      const w = byId.get(next.a.workerId)!;
      w.busy -= 1;
      open -= await completeOne(store, next.a, answer(w.behaviour, payloads.get(next.a.jobId)!, random));
    }
    if (clock.now() - lastBeat >= TRUST_SIM_BOUNDS.heartbeatIntervalMs) {
      for (const w of workers) await store.heartbeat({ workerId: w.id });
      lastBeat = clock.now();
    }
  }
  return tally(s, store, workers, clock.now() - start, payloads);
}

/** Claims for every worker with a free slot; each placement finishes after the worker's run time, with jitter. */
async function claimForIdle(store: Store, workers: SimWorker[], running: Running[], clock: VirtualClock, random: Random): Promise<void> {
  // A quarantined worker is among them too: the store gives it nothing, as it would a real one.
  const idle = workers.filter((w) => w.busy < w.slots).map((w) => w.id);
  if (idle.length === 0) return;
  const got = await store.claim({ workerIds: idle, place, maxJobs: idle.length });
  for (const a of got) {
    const w = workers.find((x) => x.id === a.workerId)!;
    w.busy += 1;
    w.taken += 1;
    running.push({ at: clock.now() + Math.round(w.runMs * (0.8 + 0.4 * random.next())), a });
  }
}

/** Completes an attempt (a stale lease is fine: the job ended or the worker was quarantined); returns 1 when its job ended. */
async function completeOne(store: Store, a: Assignment, result: Json): Promise<number> {
  try {
    const out = await store.complete({ attemptId: a.attemptId, lease: a.lease, result });
    const ended = out.changes.filter((c) => c.jobId === a.jobId && ['succeeded', 'failed', 'cancelled'].includes(c.state));
    return ended.length > 0 ? 1 : 0;
  } catch (err) {
    if (isGafferError(err, 'STALE_LEASE') || isGafferError(err, 'ATTEMPT_NOT_FOUND')) return 0;
    throw err;
  }
}

async function tally(s: TrustScenario, store: Store, workers: SimWorker[], makespanMs: number, payloads: Map<string, Json>): Promise<TrustOutcome> {
  let succeeded = 0;
  let wrong = 0;
  let failed = 0;
  let attempts = 0;
  let cursor: string | undefined;
  const truthOf = (id: string): string => JSON.stringify(answer('honest', payloads.get(id)!, seededRandom(0)));
  for (let page = 0; page < Math.ceil(s.jobs / 500) + 2; page++) {
    const res = await store.listJobs(cursor === undefined ? { limit: 500 } : { limit: 500, cursor });
    for (const j of res.jobs) {
      attempts += j.attempts;
      if (j.state === 'succeeded') {
        succeeded++;
        if (JSON.stringify(j.result) !== truthOf(j.id)) wrong++;
      } else failed++;
    }
    if (res.nextCursor === null) break;
    cursor = res.nextCursor;
  }
  // A quarantined worker is handed nothing more: the jobs it took are those before its quarantine.
  const quarantined = new Set((await store.listWorkers()).filter((w) => w.quarantined).map((w) => w.id));
  const outcomes = workers.map((w) => ({ id: w.id, behaviour: w.behaviour, quarantined: quarantined.has(w.id), jobsBeforeQuarantine: w.taken }));
  const bad = outcomes.filter((w) => w.behaviour !== 'honest');
  return {
    scenario: s.name,
    jobs: s.jobs,
    succeeded,
    wrongAccepted: wrong,
    failed,
    attemptsPerJob: attempts / s.jobs,
    honestQuarantined: outcomes.filter((w) => w.behaviour === 'honest' && w.quarantined).length,
    badQuarantined: bad.filter((w) => w.quarantined).length,
    bad: bad.length,
    worstJobsToQuarantine: Math.max(0, ...bad.map((w) => w.jobsBeforeQuarantine)),
    makespanMs,
    workers: outcomes,
  };
}
