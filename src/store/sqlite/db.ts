// Opening a SQLite database: pragmas, migrations, transactions and a cache of
// prepared statements.
//
// Its failures come out as the catalogue's where they are about availability
// (sqliteStoreError): "database is locked" (another process holds the write
// lock past busyTimeoutMs) is STORE_BUSY; a closed database is NOT_READY.
// Anything else (a constraint, a trigger's refusal, a bug) passes through.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync, type SQLInputValue, type StatementSync } from 'node:sqlite';
import { ATTEMPT_TRANSITIONS, JOB_TRANSITIONS } from '../../types/states.ts';
import { GafferError } from '../../types/errors.ts';
import type { Clock } from '../../types/clock.ts';
import { MIGRATIONS, RENUMBERED, type Migration, type Renumbering } from './schema.ts';

export type Param = SQLInputValue;
export type SqliteRow = Record<string, unknown>;

export interface SqliteOptions {
  /** A file path, or ':memory:'. */
  path: string;
  /** 'full' survives power loss; 'normal' survives a process crash only. */
  synchronous?: 'full' | 'normal';
  /** How long a write waits for another process's lock before STORE_BUSY. */
  busyTimeoutMs?: number;
  /** The injected clock: schema_migrations.applied_at. */
  clock: Clock;
}

export const SQLITE_DEFAULTS = {
  synchronous: 'full',
  busyTimeoutMs: 5000,
  statementCacheMax: 512,
  /** Most writes that share one transaction (one commit, one fsync) in group commit. */
  groupCommitMaxOps: 256,
} as const;

interface QueuedWrite {
  fn: () => unknown;
  durable: boolean;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

export class SqliteDb {
  readonly db: DatabaseSync;
  private readonly statements = new Map<string, StatementSync>();
  private inTransaction = false;
  /** Writes waiting for the next group commit. */
  private queued: QueuedWrite[] = [];
  private flushScheduled = false;
  /** The configured synchronous mode, and the one the connection is in now. */
  private readonly synchronous: 'FULL' | 'NORMAL';
  private currentSync: 'FULL' | 'NORMAL';
  private readonly clock: Clock;

  constructor(options: SqliteOptions) {
    if (options.path !== ':memory:') mkdirSync(dirname(options.path), { recursive: true });
    this.clock = options.clock;
    this.db = new DatabaseSync(options.path);
    const busy = options.busyTimeoutMs ?? SQLITE_DEFAULTS.busyTimeoutMs;
    this.db.exec(`PRAGMA busy_timeout = ${Math.floor(busy)}`);
    this.db.exec('PRAGMA journal_mode = WAL');
    this.synchronous = (options.synchronous ?? SQLITE_DEFAULTS.synchronous) === 'full' ? 'FULL' : 'NORMAL';
    this.currentSync = this.synchronous;
    this.db.exec(`PRAGMA synchronous = ${this.synchronous}`);
    this.db.exec('PRAGMA foreign_keys = ON');
    this.migrate();
    this.loadTransitions();
  }

  /**
   * Moves the records of RENUMBERED to their shared numbers, then runs the
   * migrations not yet recorded, in one write transaction: two processes
   * opening one file take turns, and the later finds the work done.
   */
  private migrate(): void {
    this.tx(() => {
      this.db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
      for (const r of RENUMBERED) this.renumber(r);
      const row = this.db.prepare('SELECT max(version) AS v FROM schema_migrations').get() as { v: number | null };
      const current = row.v ?? 0;
      for (const m of MIGRATIONS) {
        if (m.version <= current) continue;
        this.db.exec(m.sql);
        this.record(m);
      }
    });
  }

  /** A record made under the old number moves to the shared one; the no-ops it skipped over count as applied. */
  private renumber(r: Renumbering): void {
    const moved = this.db.prepare('UPDATE schema_migrations SET version = ? WHERE version = ? AND name = ?').run(r.toVersion, r.fromVersion, r.name);
    if (Number(moved.changes) === 0) return;
    for (const m of MIGRATIONS) {
      if (m.version >= r.fromVersion && m.version < r.toVersion) this.record(m);
    }
  }

  private record(m: Migration): void {
    this.db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, this.clock.now());
  }

  private loadTransitions(): void {
    this.tx(() => {
      this.db.exec('DELETE FROM job_transitions; DELETE FROM attempt_transitions;');
      const j = this.db.prepare('INSERT INTO job_transitions (from_state, to_state) VALUES (?, ?)');
      for (const t of JOB_TRANSITIONS) j.run(t.from, t.to);
      const a = this.db.prepare('INSERT INTO attempt_transitions (from_state, to_state) VALUES (?, ?)');
      for (const t of ATTEMPT_TRANSITIONS) a.run(t.from, t.to);
    });
  }

  /** The prepared statement for this text; close() empties the cache, so a closed database fails here (NOT_READY). */
  stmt(sql: string): StatementSync {
    let s = this.statements.get(sql);
    if (!s) {
      if (this.statements.size >= SQLITE_DEFAULTS.statementCacheMax) this.statements.clear();
      s = storeErrors(() => this.db.prepare(sql));
      this.statements.set(sql, s);
    }
    return s;
  }

  all(sql: string, ...params: Param[]): SqliteRow[] {
    return storeErrors(() => this.stmt(sql).all(...params) as SqliteRow[]);
  }

  get(sql: string, ...params: Param[]): SqliteRow | undefined {
    return storeErrors(() => this.stmt(sql).get(...params) as SqliteRow | undefined);
  }

  run(sql: string, ...params: Param[]): number {
    return storeErrors(() => Number(this.stmt(sql).run(...params).changes));
  }

  /** Runs fn in one write transaction. The store is synchronous, so nothing interleaves. */
  tx<T>(fn: () => T): T {
    if (this.inTransaction) return fn();
    try {
      this.db.exec('BEGIN IMMEDIATE');
    } catch (err) {
      throw sqliteStoreError(err);
    }
    this.inTransaction = true;
    try {
      const out = fn();
      this.db.exec('COMMIT');
      return out;
    } catch (err) {
      if (this.db.isTransaction) this.db.exec('ROLLBACK');
      throw sqliteStoreError(err);
    } finally {
      this.inTransaction = false;
    }
  }

  /**
   * Group commit: runs fn in a write transaction shared with the other writes
   * queued in the same turn of the event loop (at most groupCommitMaxOps), so
   * that many writes cost one commit and one fsync. Each write runs in its own
   * savepoint, in the order queued, seeing the ones before it: if it throws,
   * only its own changes roll back and only its promise rejects. Every promise
   * settles after the COMMIT, so a write is acknowledged only once durable.
   *
   * `durable: false` marks a write whose loss in a power cut is harmless
   * because it is redone or refused later: a claim (a lease the store never
   * recorded makes the worker's report ATTEMPT_NOT_FOUND, and the job runs
   * again), a heartbeat, progress, a sweep, a worker's (dis)connection. A
   * group of only such writes commits without fsync (WAL, synchronous
   * NORMAL); it still survives a crash of the process, and the next durable
   * commit makes it durable too.
   */
  write<T>(fn: () => T, durable = true): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queued.push({ fn, durable, resolve: resolve as (value: unknown) => void, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.flushScheduled = false;
    const batch = this.queued.splice(0, SQLITE_DEFAULTS.groupCommitMaxOps);
    if (this.queued.length > 0) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
    if (batch.length === 0) return;
    if (!this.db.isOpen) {
      for (const w of batch) w.reject(new GafferError('NOT_READY', 'the store is closed'));
      return;
    }
    this.setSync(batch.some((w) => w.durable) ? this.synchronous : 'NORMAL');
    // One write alone needs no savepoint.
    if (batch.length === 1) {
      const w = batch[0]!;
      try {
        w.resolve(this.tx(w.fn));
      } catch (err) {
        w.reject(err);
      }
      return;
    }
    const outcomes: ({ ok: true; value: unknown } | { ok: false; err: unknown })[] = [];
    try {
      this.tx(() => {
        for (const w of batch) {
          this.db.exec('SAVEPOINT w');
          try {
            outcomes.push({ ok: true, value: w.fn() });
            this.db.exec('RELEASE w');
          } catch (err) {
            this.db.exec('ROLLBACK TO w');
            this.db.exec('RELEASE w');
            outcomes.push({ ok: false, err: sqliteStoreError(err) });
          }
        }
      });
    } catch (err) {
      // The commit itself failed (or BEGIN found the database busy): nothing of the batch is kept.
      for (const w of batch) w.reject(err);
      return;
    }
    batch.forEach((w, i) => {
      const o = outcomes[i]!;
      if (o.ok) w.resolve(o.value);
      else w.reject(o.err);
    });
  }

  /** The fsync policy of the next commit (outside a transaction, where SQLite allows the change). */
  private setSync(mode: 'FULL' | 'NORMAL'): void {
    if (mode === this.currentSync) return;
    this.db.exec(`PRAGMA synchronous = ${mode}`);
    this.currentSync = mode;
  }

  close(): void {
    for (const w of this.queued.splice(0)) w.reject(new GafferError('NOT_READY', 'the store is closed'));
    this.statements.clear();
    if (this.db.isOpen) this.db.close();
  }
}

/** A failure as the catalogue has it (the top of this file): STORE_BUSY, NOT_READY, or the error itself. */
export function sqliteStoreError(err: unknown): unknown {
  if (err instanceof GafferError) return err;
  const msg = err instanceof Error ? err.message : String(err);
  if (/database is locked|SQLITE_BUSY/i.test(msg)) return new GafferError('STORE_BUSY', msg);
  // node:sqlite's ERR_INVALID_STATE, for the database or a statement of it after close().
  if (/database is not open|statement has been finalized/i.test(msg)) return new GafferError('NOT_READY', 'the store is closed');
  return err;
}

function storeErrors<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw sqliteStoreError(err);
  }
}
