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


export class SqliteDb {
  readonly db: DatabaseSync;
  private readonly statements = new Map<string, StatementSync>();
  private inTransaction = false;
  private readonly clock: Clock;
  /** What `PRAGMA journal_mode = WAL` answered: 'wal', or 'memory' for ':memory:'. */
  readonly journalMode: string;

  constructor(options: SqliteOptions) {
    if (options.path !== ':memory:') mkdirSync(dirname(options.path), { recursive: true });
    this.clock = options.clock;
    this.db = new DatabaseSync(options.path);
    const busy = options.busyTimeoutMs ?? SQLITE_DEFAULTS.busyTimeoutMs;
    this.db.exec(`PRAGMA busy_timeout = ${Math.floor(busy)}`);
    const mode = this.db.prepare('PRAGMA journal_mode = WAL').get() as { journal_mode?: string } | undefined;
    this.journalMode = String(mode?.journal_mode ?? '').toLowerCase();
    // The configured mode, for the migrations below; the executor (exec.ts) then commits under NORMAL
    // and syncs the WAL itself for what must be durable (wal-sync.ts), or lowers it per group where it cannot.
    this.db.exec(`PRAGMA synchronous = ${(options.synchronous ?? SQLITE_DEFAULTS.synchronous) === 'full' ? 'FULL' : 'NORMAL'}`);
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

  close(): void {
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
