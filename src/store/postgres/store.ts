// The PostgreSQL store: several coordinators on one database. The engine
// decides everything and takes row locks in its one order (workers, then jobs,
// then attempts; see engine/jobs.ts); this backend holds its schema and
// migrations (db.ts, schema.ts), its executor and dialect (exec.ts), wake-ups
// between coordinators (wake.ts), and the fast paths it measured: whole
// batches in one statement (queries.ts), plain submits and plain results
// without a transaction (below, complete-batch.ts).
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { assert } from '../../types/errors.ts';
import { LIMITS } from '../../types/limits.ts';
import type { NewJob } from '../../types/model.ts';
import { trustPolicy } from '../../trust/index.ts';
import { jobFromRow } from '../engine/columns.ts';
import { newJobRow } from '../engine/jobs.ts';
import { mustGetJob } from '../engine/jobs.ts';
import { EngineStore, type EngineOptions } from '../engine/store.ts';
import { resultHash } from '../rules.ts';
import type { CompleteParams, SettleResult, SubmitResult } from '../store.ts';
import { CompleteBatcher } from './complete-batch.ts';
import { PgDb } from './db.ts';
import { pgDialect, PgExecutor } from './exec.ts';
import { candidatePageLateral, insertArrays, insertJobsUnnest, SUBMIT_PLAIN_SQL, writeLeasesBatch } from './queries.ts';
import { WakeListener } from './wake.ts';

export interface PostgresStoreOptions extends EngineOptions {
  /** postgres://user:password@host:port/database. Either this or `pool`. */
  url?: string;
  /** A pool the caller owns (and ends): the store uses it and leaves it open on close. */
  pool?: pg.Pool;
  /** The schema of Gaffer's tables: created when missing, set as the search_path of the store's connections. */
  schema?: string;
  /** Most pooled connections, when the store makes its own pool (POSTGRES_DEFAULTS.poolMax). */
  poolMax?: number;
}

/** Connects, migrates, and returns a store. Several stores (coordinators) may share one database and schema. */
export async function openPostgresStore(options: PostgresStoreOptions): Promise<PostgresStore> {
  // A bad policy is refused before any connection is opened.
  trustPolicy(options.trust);
  const storeId = randomUUID();
  const db = await PgDb.open(options, storeId);
  return new PostgresStore(db, storeId, options);
}

export class PostgresStore extends EngineStore {
  readonly kind = 'postgres' as const;
  readonly capabilities = { shared: true, groupCommit: false } as const;
  private readonly db: PgDb;
  private readonly wake: WakeListener;
  private readonly batcher: CompleteBatcher;

  constructor(db: PgDb, storeId: string, options: PostgresStoreOptions) {
    super(new PgExecutor(db), pgDialect, options, {
      insertJobs: insertJobsUnnest,
      candidatePage: candidatePageLateral,
      writeLeases: writeLeasesBatch,
    });
    this.db = db;
    this.wake = new WakeListener(db, storeId);
    this.batcher = new CompleteBatcher(db, options.clock);
  }

  /**
   * Calls `listener` when another coordinator on this database and schema
   * submitted, retried or re-queued work (LISTEN/NOTIFY on one dedicated
   * connection, re-established after it drops). Notifications sent while no
   * connection listens are lost: meanwhile, and once after it is back, the
   * listener is called on a timer instead. Returns the unsubscribe function.
   */
  onWake(listener: () => void): () => void {
    return this.wake.add(listener);
  }

  /** Resolves once the wake-up connection LISTENs (it opens with the first onWake listener). For tests. */
  whenListening(): Promise<void> {
    return this.wake.ready();
  }

  /** Fast path: jobs that need no idempotency check and no parent read, in one statement. */
  override submit(params: { jobs: readonly NewJob[] }): Promise<SubmitResult[]> {
    const plain = params.jobs.length > 0 && params.jobs.every((j) => j.idempotencyKey === null && j.dependsOn.length === 0);
    if (!this.fastPaths || !plain) return super.submit(params);
    assert(params.jobs.length <= LIMITS.submitBatchMaxJobs, 'submit batch within its bound');
    return this.submitPlain(params.jobs);
  }

  private async submitPlain(jobs: readonly NewJob[]): Promise<SubmitResult[]> {
    const now = this.ctx.clock.now();
    const rows = jobs.map((j) => newJobRow(this.ctx, j, new Map(), now));
    const [channel, payload] = this.db.notifyArgs();
    const inserted = await this.db.read((sql) => sql.all(SUBMIT_PLAIN_SQL, [...insertArrays(rows), channel, payload]));
    const byId = new Map(inserted.map((r) => [String(r.id), r]));
    return rows.map((r) => {
      const row = byId.get(r.id);
      assert(row, 'a job with no idempotency key is always inserted');
      return { job: jobFromRow(row), created: true };
    });
  }

  /** Fast path: a plain job's result in the batched statement; anything else (an output to publish too), or a refusal, takes the full transaction. */
  override async complete(params: CompleteParams): Promise<SettleResult> {
    if (!this.fastPaths || params.output === true) return super.complete(params);
    const fast = await this.batcher.complete(params);
    if (fast.kind === 'settled') return fast.out;
    if (fast.kind === 'unknown') {
      // The connection failed under the fast statement: if it committed, this very result is already the job's.
      const done = await this.read((x) =>
        x.get(`SELECT a.job_id FROM attempts a WHERE a.id = $1 AND a.lease = $2 AND a.state = 'completed' AND a.result_hash = $3`, [
          params.attemptId, params.lease, resultHash(params.result),
        ]),
      );
      if (done) return { job: await this.read((x) => mustGetJob(x, String(done.job_id))), changes: [] };
    }
    return super.complete(params);
  }

  /** Like SQLite's close in shape, not in what it closes: the LISTEN connection, then the pool. */
  async close(): Promise<void> {
    await this.wake.close();
    await this.db.close();
  }
}
