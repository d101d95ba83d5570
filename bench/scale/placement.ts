// Placement cost as the pool grows, and claim contention between coordinators
// sharing one PostgreSQL database. Workers here are simulated at the store
// (records that heartbeat, no sockets: the `workers` phase measures real
// WebSockets up to a thousand); the claims go through the coordinator's own
// Dispatcher, OpenSlots and Membership, on a virtual clock that moves only
// when the bench moves it, so no worker goes offline while a slow claim runs.
//
// Steady state: every worker is full and a backlog waits. Each round ends a
// batch of attempts at random workers (as results arriving would), then one
// dispatch pass refills the freed slots. Measured: store time of the claims
// per attempt placed. The same with every attached worker in every claim
// (how the coordinator claimed before OpenSlots) for comparison; and an idle
// pool, where each job submitted is dispatched alone.
import { Dispatcher } from '../../src/coordinator/dispatcher.ts';
import { everyWorker, OpenSlots, type ClaimPool } from '../../src/coordinator/open-slots.ts';
import { Membership } from '../../src/coordinator/shares.ts';
import { place } from '../../src/scheduler/index.ts';
import { openPostgresStore } from '../../src/store/postgres/store.ts';
import { openSqliteStore } from '../../src/store/sqlite/store.ts';
import type { Store } from '../../src/store/store.ts';
import { seededRandom, VirtualClock } from '../../src/types/clock.ts';
import type { Assignment, WorkerSpec } from '../../src/types/model.ts';
import { noopJob } from './claims.ts';
import type { PgServer } from './pg.ts';
import { count, note, percentile } from './util.ts';

export const PLACEMENT_BOUNDS = {
  /** Slots per simulated worker. */
  slotsPerWorker: 2,
  /** Attempts ended per round, at random workers. */
  endedPerRound: 32,
  /** Jobs submitted per statement while loading. */
  submitBatchJobs: 1000,
  /** Virtual time each round moves on. */
  roundMs: 5,
} as const;

export interface PlacementOptions {
  workers: number;
  rounds: number;
  /** Jobs submitted one at a time to the idle pool. */
  idleJobs: number;
}

export interface PlacementRun {
  store: 'sqlite' | 'postgres';
  workers: number;
  /** `open-slots`: claims for the workers that may have a free slot; `every-worker`: every attached worker in every claim. */
  pool: 'open-slots' | 'every-worker';
  placed: number;
  claims: number;
  /** Store time of the claims per attempt placed, in the steady state. */
  msPerJob: number;
  /** The same, each job dispatched alone to an idle pool. */
  idleMsPerJob: number | null;
}

export interface ContentionRun {
  coordinators: number;
  shares: boolean;
  workers: number;
  placed: number;
  claims: number;
  /** Wall time of the whole run per attempt placed, over all coordinators. */
  wallMsPerJob: number;
  claimP50Ms: number;
  claimP99Ms: number;
  /** Placed attempts of jobs outside the claiming coordinator's share. */
  outsideShareFraction: number;
  /** Claims that placed nothing though their workers had freed slots and the backlog was not empty. */
  emptyClaims: number;
}

/** A fresh store; `analyze`: PostgreSQL's statistics brought up to date after the bulk load (as autovacuum would soon), nothing on SQLite. */
export type Opener = (name: string, clock: VirtualClock) => Promise<{ store: Store; analyze: () => Promise<void>; destroy: () => Promise<void> }>;

export function sqliteOpener(dir: string): Opener {
  return async (name, clock) => {
    const store = openSqliteStore({ path: `${dir}/placement-${name}.db`, clock, random: seededRandom(7), synchronous: 'normal' });
    return { store, analyze: async () => {}, destroy: () => store.close() };
  };
}

export function postgresOpener(pg: PgServer): Opener {
  return async (name, clock) => {
    const schema = pg.newSchema();
    const store = await openPostgresStore({ url: pg.url, schema, clock, random: seededRandom(name.length) });
    return {
      store,
      analyze: () => pg.withClient(schema, async (c) => void (await c.query('ANALYZE'))),
      destroy: async () => {
        await store.close();
        await pg.dropSchema(schema);
      },
    };
  };
}

const spec = (i: number): WorkerSpec => ({
  name: `sim-${i}`, labels: {}, cores: 8, memoryMb: 16_384, gpuIds: [], queues: { scale: PLACEMENT_BOUNDS.slotsPerWorker }, keys: [],
});

/** A coordinator's claim path, without the network: a store, its OpenSlots and a Dispatcher. */
class SimCoordinator {
  readonly slots: OpenSlots;
  readonly dispatcher: Dispatcher;
  readonly live: Assignment[] = [];
  readonly claimMs: number[] = [];
  placed = 0;
  emptyClaims = 0;
  membership: Membership | null = null;
  private readonly store: Store;

  constructor(store: Store, clock: VirtualClock, pool: 'open-slots' | 'every-worker', ids: () => string[]) {
    this.store = store;
    this.slots = new OpenSlots(() => true);
    const claimPool: ClaimPool = pool === 'open-slots' ? this.slots : everyWorker(ids);
    const timed: Store = Object.create(store) as Store;
    timed.claim = async (params) => {
      const t0 = performance.now();
      const out = await store.claim(params);
      this.claimMs.push(performance.now() - t0);
      if (out.length === 0) this.emptyClaims++;
      return out;
    };
    this.dispatcher = new Dispatcher({
      store: timed,
      clock,
      place,
      pool: claimPool,
      share: () => this.membership?.share() ?? null,
      deliver: (a) => {
        this.slots.delivered(a);
        this.live.push(...a);
        this.placed += a.length;
      },
      onError: (err) => {
        throw err;
      },
    });
    this.dispatcher.start();
  }

  async dispatch(): Promise<void> {
    this.dispatcher.kick();
    await this.dispatcher.idle();
  }

  /** Ends `n` attempts at random (as results arriving would). */
  async endSome(n: number, random: () => number): Promise<void> {
    for (let k = 0; k < n && this.live.length > 0; k++) {
      const i = Math.floor(random() * this.live.length);
      const a = this.live[i]!;
      this.live[i] = this.live[this.live.length - 1]!;
      this.live.pop();
      await this.store.complete({ attemptId: a.attemptId, lease: a.lease, workerId: a.workerId, result: null });
      this.slots.ended(a.workerId);
    }
  }
}

async function register(store: Store, slots: OpenSlots, from: number, to: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = from; i < to; i++) {
    const s = spec(i);
    const w = await store.upsertWorker({ spec: s });
    slots.attach(w.id, s);
    ids.push(w.id);
  }
  return ids;
}

async function load(store: Store, jobs: number): Promise<void> {
  for (let i = 0; i < jobs; i += PLACEMENT_BOUNDS.submitBatchJobs) {
    const n = Math.min(PLACEMENT_BOUNDS.submitBatchJobs, jobs - i);
    await store.submit({ jobs: Array.from({ length: n }, (_, k) => noopJob(i + k)) });
  }
}

/** One store, one coordinator: steady-state cost per placed job, then an idle pool. */
export async function placementRun(kind: 'sqlite' | 'postgres', open: Opener, pool: 'open-slots' | 'every-worker', o: PlacementOptions): Promise<PlacementRun> {
  const clock = new VirtualClock(Date.UTC(2026, 0, 1));
  const { store, analyze, destroy } = await open(`${pool}-${o.workers}`, clock);
  try {
    const rng = seededRandom(o.workers);
    let ids: string[] = [];
    const c = new SimCoordinator(store, clock, pool, () => ids);
    ids = await register(store, c.slots, 0, o.workers);
    const slots = o.workers * PLACEMENT_BOUNDS.slotsPerWorker;
    await load(store, slots + o.rounds * PLACEMENT_BOUNDS.endedPerRound);
    await c.dispatch();
    if (c.placed !== slots) throw new Error(`${kind}: filling ${count(slots)} slots placed ${count(c.placed)}`);
    await analyze();
    c.claimMs.length = 0;
    c.placed = 0;
    for (let r = 0; r < o.rounds; r++) {
      clock.advance(PLACEMENT_BOUNDS.roundMs);
      await c.endSome(PLACEMENT_BOUNDS.endedPerRound, () => rng.next());
      await c.dispatch();
    }
    const steady = { placed: c.placed, claims: c.claimMs.length, ms: c.claimMs.reduce((a, b) => a + b, 0) };
    const idleMsPerJob = o.idleJobs > 0 ? await idleRun(store, c, clock, o.idleJobs) : null;
    const run: PlacementRun = { store: kind, workers: o.workers, pool, placed: steady.placed, claims: steady.claims, msPerJob: steady.ms / steady.placed, idleMsPerJob };
    note(`placement ${kind}, ${count(o.workers)} workers, ${pool}: ${run.msPerJob.toFixed(3)} ms per job placed (${count(steady.placed)} in ${count(steady.claims)} claims), idle pool ${idleMsPerJob?.toFixed(3) ?? '-'} ms`);
    return run;
  } finally {
    await destroy();
  }
}

/** Every attempt ends, then jobs come one at a time, each dispatched alone to the idle pool. */
async function idleRun(store: Store, c: SimCoordinator, clock: VirtualClock, jobs: number): Promise<number> {
  await c.endSome(c.live.length, () => 0);
  // The backlog left over is cancelled: the pool is idle and empty.
  const queued = await store.listJobs({ state: 'queued', limit: 100_000 });
  for (const j of queued.jobs) await store.cancel({ jobId: j.id });
  c.claimMs.length = 0;
  c.placed = 0;
  for (let i = 0; i < jobs; i++) {
    clock.advance(PLACEMENT_BOUNDS.roundMs);
    await store.submit({ jobs: [noopJob(i)] });
    await c.dispatch();
  }
  if (c.placed !== jobs) throw new Error(`idle pool: ${jobs} jobs submitted, ${c.placed} placed`);
  return c.claimMs.reduce((a, b) => a + b, 0) / c.placed;
}

/** Several coordinators on one PostgreSQL database, each with its part of the workers, claiming at once. */
export async function contentionRun(pg: PgServer, coordinators: number, shares: boolean, o: PlacementOptions): Promise<ContentionRun> {
  const clock = new VirtualClock(Date.UTC(2026, 0, 1));
  const schema = pg.newSchema();
  const coords: SimCoordinator[] = [];
  const stores: Store[] = [];
  try {
    for (let i = 0; i < coordinators; i++) {
      // Each its own pool of connections, as separate coordinators would have.
      const store = await openPostgresStore({ url: pg.url, schema, clock, random: seededRandom(100 + i) });
      stores.push(store);
      const c = new SimCoordinator(store, clock, 'open-slots', () => []);
      const per = Math.floor(o.workers / coordinators);
      await register(store, c.slots, i * per, (i + 1) * per);
      if (shares) c.membership = new Membership({ store, clock, id: `bench-${i}`, weight: () => c.slots.slots, onError: (err) => note(`membership: ${String(err)}`) });
      coords.push(c);
    }
    for (const c of coords) await c.membership?.beatNow();
    for (const c of coords) await c.membership?.beatNow();
    const slots = coords.reduce((n, c) => n + c.slots.slots, 0);
    const ended = PLACEMENT_BOUNDS.endedPerRound;
    await load(stores[0]!, slots + o.rounds * coordinators * ended);
    await Promise.all(coords.map((c) => c.dispatch()));
    await pg.withClient(schema, async (client) => void (await client.query('ANALYZE')));
    for (const c of coords) {
      c.claimMs.length = 0;
      c.placed = 0;
      c.emptyClaims = 0;
      c.dispatcher.claims.outsideShare = 0;
    }
    const rng = seededRandom(coordinators);
    const t0 = performance.now();
    await Promise.all(
      coords.map(async (c) => {
        for (let r = 0; r < o.rounds; r++) {
          clock.advance(PLACEMENT_BOUNDS.roundMs);
          await c.endSome(ended, () => rng.next());
          await c.dispatch();
        }
      }),
    );
    const wallMs = performance.now() - t0;
    const placed = coords.reduce((n, c) => n + c.placed, 0);
    const claimMs = coords.flatMap((c) => c.claimMs).sort((a, b) => a - b);
    const run: ContentionRun = {
      coordinators,
      shares,
      workers: coords.reduce((n, c) => n + c.slots.size, 0),
      placed,
      claims: claimMs.length,
      wallMsPerJob: wallMs / placed,
      claimP50Ms: percentile(claimMs, 50),
      claimP99Ms: percentile(claimMs, 99),
      outsideShareFraction: coords.reduce((n, c) => n + c.dispatcher.claims.outsideShare, 0) / placed,
      emptyClaims: coords.reduce((n, c) => n + c.emptyClaims, 0),
    };
    note(
      `contention: ${coordinators} coordinator(s), shares ${shares ? 'on' : 'off'}: ${run.wallMsPerJob.toFixed(3)} ms wall per job, ` +
        `claim p50 ${run.claimP50Ms.toFixed(2)} / p99 ${run.claimP99Ms.toFixed(2)} ms, outside share ${(100 * run.outsideShareFraction).toFixed(1)}%, empty claims ${run.emptyClaims}`,
    );
    return run;
  } finally {
    for (const c of coords) c.dispatcher.stop();
    for (const s of stores) await s.close();
    await pg.dropSchema(schema);
  }
}
