// The engine's executor on PostgreSQL: engine SQL is PostgreSQL's already;
// arrays bind as typed arrays. A write runs as one READ COMMITTED transaction
// (db.ts runs it again after a deadlock or serialization failure), or, when
// it is a single statement, as one autocommit statement: no BEGIN or COMMIT
// round trips.
import { assert } from '../../types/errors.ts';
import type { Dialect, Exec, Tx, WriteOptions } from '../engine/sql.ts';
import type { Executor } from '../engine/store.ts';
import type { PgDb } from './db.ts';

export const pgDialect: Dialect = {
  inList: (p, type = 'text') => `= ANY(${p}::${type}[])`,
  notInList: (p, type = 'text') => `<> ALL(${p}::${type}[])`,
  isNullList: (p) => `${p}::text[] IS NULL`,
  nullOf: (type) => `NULL::${type === 'int' ? 'integer' : type}`,
  octetLength: (text) => `octet_length(${text})`,
  greatest: (a, b) => `greatest(${a}, ${b})`,
  jsonText: (column, key) => `(${column}::json ->> ${key})`,
  rowLocks: true,
  forUpdate: ' FOR UPDATE',
  forShare: ' FOR SHARE',
  skipLocked: ' FOR UPDATE SKIP LOCKED',
  indexedBy: () => '',
};

export class PgExecutor implements Executor {
  private readonly db: PgDb;

  constructor(db: PgDb) {
    this.db = db;
  }

  read<T>(fn: (x: Exec) => Promise<T>): Promise<T> {
    return this.db.read(fn);
  }

  write<T>(fn: (tx: Tx) => Promise<T>, options: WriteOptions): Promise<T> {
    if (options.single) {
      return this.db.read((sql) => fn({ ...sql, wake: () => assert(false, 'a single-statement write wakes no other coordinator') }));
    }
    return this.db.tx(fn);
  }
}
