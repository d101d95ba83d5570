// The embedded store: one SQLite file (WAL) for one coordinator. The engine
// decides everything; this backend holds its schema and migrations (db.ts,
// schema.ts), its executor and dialect (exec.ts), and group commit.
import { EngineStore, type EngineOptions } from '../engine/store.ts';
import { SqliteDb, SQLITE_DEFAULTS, type SqliteOptions } from './db.ts';
import { sqliteDialect, SqliteExecutor } from './exec.ts';
import { WalSync } from './wal-sync.ts';

export interface SqliteStoreOptions extends SqliteOptions, EngineOptions {}

export function openSqliteStore(options: SqliteStoreOptions): SqliteStore {
  return new SqliteStore(options);
}

export class SqliteStore extends EngineStore {
  readonly kind = 'sqlite' as const;
  readonly capabilities = { shared: false, groupCommit: true } as const;
  private readonly db: SqliteDb;
  private readonly executor: SqliteExecutor;

  constructor(options: SqliteStoreOptions) {
    const db = new SqliteDb(options);
    // Only a file in WAL mode has a log to sync; anything else keeps SQLite's own fsync at COMMIT.
    const wal = db.journalMode === 'wal' && options.path !== ':memory:' && !options.path.startsWith('file:');
    const executor = new SqliteExecutor(db, options.synchronous ?? SQLITE_DEFAULTS.synchronous, wal ? new WalSync(options.path) : null);
    super(executor, sqliteDialect, options, {});
    this.db = db;
    this.executor = executor;
  }

  /** Like PostgreSQL's close in shape, not in what it closes: writes still queued for a commit, then the file. */
  async close(): Promise<void> {
    await this.executor.close();
    this.db.close();
  }
}
