// What the bench needs from each system it measures. Every system has two
// sides: the bench process prepares a fresh instance and enqueues; a worker
// process (child.ts) consumes. What passes between them is the JSON `config`
// that `prepare` returns.

export const SYSTEM_IDS = ['gaffer-sqlite', 'gaffer-sqlite-normal', 'gaffer-sqlite-nohistory', 'gaffer-pg', 'bullmq', 'graphile-worker', 'graphile-worker-lq', 'pg-boss'] as const;
export type SystemId = (typeof SYSTEM_IDS)[number];

export type JsonConfig = Record<string, string | number | boolean | null>;

export interface BenchParams {
  /** Jobs in flight at once in one worker process. */
  concurrency: number;
  /** Jobs per enqueue call. */
  batchSize: number;
  /** graphile-worker's local queue size (the -lq variant). */
  graphileLocalQueueSize: number;
  /** pg-boss: workers (localConcurrency) in the worker process; each fetches concurrency / this many jobs at a time. */
  pgBossWorkers: number;
}

/**
 * ANALYZE of every table that holds rows, run after the bulk load. An empty
 * table is left to autovacuum: statistics that say "empty" make the planner
 * scan that table sequentially while it fills, and prepared statements keep
 * that plan until the next ANALYZE (seconds to a minute later).
 */
export const ANALYZE_LOADED_TABLES_SQL = `DO $$
DECLARE t regclass; has_rows boolean;
BEGIN
  FOR t IN SELECT c.oid::regclass FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
  LOOP
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s)', t) INTO has_rows;
    IF has_rows THEN EXECUTE format('ANALYZE %s', t); END IF;
  END LOOP;
END $$`;

export interface PrepareEnv {
  params: BenchParams;
  /** A fresh, empty PostgreSQL database; its URL. */
  newDatabase(): Promise<string>;
  /** Runs a statement on a database of the bench's PostgreSQL server. */
  pgExec(dbUrl: string, sql: string): Promise<void>;
  /** The Redis server, emptied for this system. */
  redisUrl(): Promise<string>;
  /** A temp dir for this system's files, removed after it. */
  tmpDir: string;
  /** Extra node arguments for a coordinator process (profiling). */
  serveNodeArgs: string[];
}

export interface Prepared {
  /** What the worker process and the producers need to reach this instance. */
  config: JsonConfig;
  /** Run after the bulk load, outside the timings: ANALYZE_LOADED_TABLES_SQL on PostgreSQL. */
  afterLoad?(): Promise<void>;
  /** The coordinator's pid, for Gaffer (profiling, reporting). */
  servePid?: number;
  close(): Promise<void>;
}

export interface Producer {
  /** Enqueues jobs with payloads {i} for i in [from, from + count), in one call of the system's batch API. */
  submitBatch(from: number, count: number): Promise<void>;
  /** Enqueues one job with payload {i}, by the system's single-job API. */
  submitOne(i: number): Promise<void>;
  close(): Promise<void>;
}

export interface ConsumerOptions {
  concurrency: number;
  params: BenchParams;
  /** Called first thing in the handler, with the job's payload i. The handler then returns at once. */
  onStart(i: number): void;
}

export interface Consumer {
  /** Starts taking jobs. Connections the system lets one open ahead are opened before this, by openConsumer. */
  start(): Promise<void>;
  /**
   * Resolves once the system has recorded `n` completions since this consumer
   * opened: acknowledged to the worker when the system says so, otherwise
   * read back from the store.
   */
  completed(n: number): Promise<void>;
  close(): Promise<void>;
}

export interface System {
  id: SystemId;
  /** Name in the report. */
  label: string;
  /** Where its jobs live. */
  store: string;
  /** Gaffer, or a peer. */
  gaffer: boolean;
  needs: 'postgres' | 'redis' | null;
  /** How it is configured here, for the report. */
  describe(params: BenchParams): string;
  prepare(env: PrepareEnv): Promise<Prepared>;
  openProducer(config: JsonConfig): Promise<Producer>;
  openConsumer(config: JsonConfig, options: ConsumerOptions): Promise<Consumer>;
}

export async function loadSystem(id: SystemId): Promise<System> {
  switch (id) {
    case 'gaffer-sqlite':
      return (await import('./systems/gaffer.ts')).gafferSqlite;
    case 'gaffer-sqlite-normal':
      return (await import('./systems/gaffer.ts')).gafferSqliteNormal;
    case 'gaffer-sqlite-nohistory':
      return (await import('./systems/gaffer.ts')).gafferSqliteNoHistory;
    case 'gaffer-pg':
      return (await import('./systems/gaffer.ts')).gafferPostgres;
    case 'bullmq':
      return (await import('./systems/bullmq.ts')).bullmq;
    case 'graphile-worker':
      return (await import('./systems/graphile.ts')).graphileWorker;
    case 'graphile-worker-lq':
      return (await import('./systems/graphile.ts')).graphileWorkerLocalQueue;
    case 'pg-boss':
      return (await import('./systems/pgboss.ts')).pgBoss;
  }
}

/** A counter that resolves waiters once it reaches their target. */
export class Counter {
  value = 0;
  private waiters: { n: number; resolve: () => void }[] = [];

  add(k = 1): void {
    this.value += k;
    if (this.waiters.length === 0) return;
    const keep: { n: number; resolve: () => void }[] = [];
    for (const w of this.waiters) {
      if (this.value >= w.n) w.resolve();
      else keep.push(w);
    }
    this.waiters = keep;
  }

  reach(n: number): Promise<void> {
    if (this.value >= n) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ n, resolve }));
  }
}

/** Polls `check` every `intervalMs` until it is true. */
export async function pollUntil(check: () => Promise<boolean>, intervalMs = 2): Promise<void> {
  while (!(await check())) await new Promise((r) => setTimeout(r, intervalMs));
}
