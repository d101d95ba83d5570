// The engine's executor on SQLite: numbered placeholders become ?NNN, array
// parameters JSON text (read back with json_each), and writes share commits.
//
// Group commit: writes queued in one turn of the event loop (at most
// groupCommitMaxOps) run in one transaction, in the order queued, each in its
// own savepoint and seeing the ones before it: if one throws, only its own
// changes roll back and only its promise rejects. Every promise settles after
// the COMMIT, so a write is acknowledged only once durable. node:sqlite is
// synchronous: a write's steps resolve at once, so a whole batch runs within
// one turn and nothing of this process interleaves with it; a read that
// arrives meanwhile waits for the commit instead of seeing uncommitted rows.
//
// `durable: false` marks a write whose loss in a power cut is harmless because
// it is redone or refused later: a claim (a lease the store never recorded
// makes the worker's report ATTEMPT_NOT_FOUND, and the job runs again), a
// heartbeat, progress, a sweep, a worker's (dis)connection. A group of only
// such writes commits without fsync (WAL, synchronous NORMAL); it still
// survives a crash of the process, and the next durable commit makes it
// durable too.
//
// On a file with `synchronous: 'full'` every commit is made under NORMAL and a
// group holding a durable write then waits for an fdatasync of the WAL on the
// thread pool (wal-sync.ts) before its promises settle: the same guarantee
// without stopping the event loop for the disk. The next group waits for it
// too, so acknowledgements keep the order of the commits. A failed fdatasync
// stops the store: its group is refused, and so is every read and write after
// it (NOT_READY) until the coordinator is restarted.
import { GafferError } from '../../types/errors.ts';
import type { SQLInputValue } from 'node:sqlite';
import type { Executor } from '../engine/store.ts';
import type { Dialect, Exec, Param, Tx, WriteOptions } from '../engine/sql.ts';
import type { Row } from '../rows.ts';
import { SQLITE_DEFAULTS, sqliteStoreError, type SqliteDb } from './db.ts';
import type { WalSyncer } from './wal-sync.ts';

export const sqliteDialect: Dialect = {
  inList: (p) => `IN (SELECT value FROM json_each(${p}))`,
  notInList: (p) => `NOT IN (SELECT value FROM json_each(${p}))`,
  isNullList: (p) => `${p} IS NULL`,
  nullOf: () => 'NULL',
  octetLength: (text) => `length(CAST(${text} AS BLOB))`,
  greatest: (a, b) => `max(${a}, ${b})`,
  jsonText: (column, key) => `json_extract(${column}, '$.' || json_quote(${key}))`,
  rowLocks: false,
  forUpdate: '',
  forShare: '',
  skipLocked: '',
  indexedBy: (name) => `INDEXED BY ${name}`,
};

/** Statement texts already turned into SQLite's form, by engine text. */
const translated = new Map<string, string>();

function sqliteText(text: string): string {
  let out = translated.get(text);
  if (out === undefined) {
    out = text.replace(/\$(\d+)/g, '?$1');
    if (translated.size >= SQLITE_DEFAULTS.statementCacheMax) translated.clear();
    translated.set(text, out);
  }
  return out;
}

function bind(params: readonly Param[]): SQLInputValue[] {
  return params.map((p) => (Array.isArray(p) ? JSON.stringify(p) : typeof p === 'boolean' ? (p ? 1 : 0) : (p as SQLInputValue)));
}

interface QueuedWrite {
  fn: (tx: Tx) => Promise<unknown>;
  durable: boolean;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

type Outcome = { ok: true; value: unknown } | { ok: false; err: unknown };

export class SqliteExecutor implements Executor {
  private readonly sdb: SqliteDb;
  private readonly exec: Tx;
  private queued: QueuedWrite[] = [];
  private flushScheduled = false;
  /** Resolves when the batch being committed is done; null when none is. */
  private flushing: Promise<void> | null = null;
  /** The configured synchronous mode, and the one the connection is in now. */
  private readonly synchronous: 'FULL' | 'NORMAL';
  private currentSync: 'FULL' | 'NORMAL';
  /** Makes a durable group's commit durable off the event loop; null: SQLite's own fsync at COMMIT does. */
  private readonly walSync: WalSyncer | null;
  /** Set once an fdatasync failed: every later read and write is refused with it. */
  private broken: GafferError | null = null;

  /** `walSync` (only with 'full'): commits run under NORMAL, and a durable group waits for it before it settles. */
  constructor(sdb: SqliteDb, synchronous: 'full' | 'normal', walSync: WalSyncer | null = null) {
    this.sdb = sdb;
    this.synchronous = synchronous === 'full' ? 'FULL' : 'NORMAL';
    this.walSync = synchronous === 'full' ? walSync : null;
    this.currentSync = this.synchronous;
    if (this.walSync) this.setSync('NORMAL');
    const stmt = (text: string) => sdb.stmt(sqliteText(text));
    this.exec = {
      all: async (text, params = []) => stmt(text).all(...bind(params)) as Row[],
      get: async (text, params = []) => stmt(text).get(...bind(params)) as Row | undefined,
      run: async (text, params = []) => Number(stmt(text).run(...bind(params)).changes),
      wake: () => {},
    };
  }

  async read<T>(fn: (x: Exec) => Promise<T>): Promise<T> {
    while (this.flushing) await this.flushing;
    if (this.broken) throw this.broken;
    if (!this.sdb.db.isOpen) throw new GafferError('NOT_READY', 'the store is closed');
    return fn(this.exec);
  }

  write<T>(fn: (tx: Tx) => Promise<T>, options: WriteOptions): Promise<T> {
    if (this.broken) return Promise.reject(this.broken);
    return new Promise<T>((resolve, reject) => {
      this.queued.push({ fn, durable: options.durable, resolve: resolve as (value: unknown) => void, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      if (this.flushing) return void this.flushing.then(() => this.schedule());
      this.flushing = this.flush().finally(() => (this.flushing = null));
    });
  }

  private async flush(): Promise<void> {
    const batch = this.queued.splice(0, SQLITE_DEFAULTS.groupCommitMaxOps);
    if (this.queued.length > 0) this.schedule();
    if (batch.length === 0) return;
    if (!this.sdb.db.isOpen) {
      for (const w of batch) w.reject(new GafferError('NOT_READY', 'the store is closed'));
      return;
    }
    const durable = batch.some((w) => w.durable);
    if (!this.walSync) this.setSync(durable ? this.synchronous : 'NORMAL');
    let outcomes: Outcome[];
    try {
      outcomes = await this.transaction(() => (batch.length === 1 ? this.runAlone(batch[0]!) : this.runEach(batch)));
    } catch (err) {
      // The commit itself failed (or BEGIN found the database busy): nothing of the batch is kept.
      for (const w of batch) w.reject(err);
      return;
    }
    if (durable && this.walSync) {
      try {
        await this.walSync.sync();
      } catch (err) {
        // Committed, but not known to be on disk, and after a failed fdatasync the kernel may
        // have dropped the pages it could not write: nothing after it can be trusted to be
        // durable either. As PostgreSQL does, the store stops; the operator restarts it.
        const cause = err instanceof Error ? err.message : String(err);
        this.broken = new GafferError('NOT_READY', `the store could not flush its log to disk (${cause}); restart the coordinator`);
        for (const w of batch) w.reject(new GafferError('INTERNAL', `the commit could not be flushed to disk (${cause}); it may not survive a power cut`));
        for (const w of this.queued.splice(0)) w.reject(this.broken);
        return;
      }
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
    this.sdb.db.exec(`PRAGMA synchronous = ${mode}`);
    this.currentSync = mode;
  }

  /** BEGIN IMMEDIATE, fn, COMMIT; ROLLBACK when fn or the commit throws. */
  private async transaction<T>(fn: () => Promise<T>): Promise<T> {
    const db = this.sdb.db;
    try {
      db.exec('BEGIN IMMEDIATE');
    } catch (err) {
      throw sqliteStoreError(err);
    }
    try {
      const out = await fn();
      db.exec('COMMIT');
      return out;
    } catch (err) {
      if (db.isTransaction) db.exec('ROLLBACK');
      throw sqliteStoreError(err);
    }
  }

  /** One write alone needs no savepoint: if it throws, the whole transaction rolls back. */
  private async runAlone(w: QueuedWrite): Promise<Outcome[]> {
    return [{ ok: true, value: await w.fn(this.exec) }];
  }

  private async runEach(batch: readonly QueuedWrite[]): Promise<Outcome[]> {
    const outcomes: Outcome[] = [];
    for (const w of batch) {
      this.sdb.db.exec('SAVEPOINT w');
      try {
        outcomes.push({ ok: true, value: await w.fn(this.exec) });
        this.sdb.db.exec('RELEASE w');
      } catch (err) {
        this.sdb.db.exec('ROLLBACK TO w');
        this.sdb.db.exec('RELEASE w');
        outcomes.push({ ok: false, err: sqliteStoreError(err) });
      }
    }
    return outcomes;
  }

  /** Rejects the writes still queued, then waits for the group being committed (and its fsync). */
  async close(): Promise<void> {
    for (const w of this.queued.splice(0)) w.reject(new GafferError('NOT_READY', 'the store is closed'));
    while (this.flushing) await this.flushing;
    this.walSync?.close();
  }
}

