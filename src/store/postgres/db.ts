// Opening a PostgreSQL database: the pool, the schema and its search_path,
// migrations under an advisory lock, the transition tables, and transactions
// that are run again when they lose a race (deadlock, serialization failure).
//
// It is also the one place where PostgreSQL's failures become the catalogue's
// (storeError below): PgDb.read and PgDb.tx reject with
// - NOT_READY when no connection could be had (refused, reset, the server
//   shutting down or starting up, the store closed) or the one in use failed
//   mid-call: whether a statement then in flight committed is unknown;
// - STORE_BUSY when the server answered that it cannot do it now (a race
//   still lost after the retries, a lock not available, a statement timeout,
//   too many connections), or no pooled connection came free in time:
//   nothing was changed;
// - anything else unchanged: a refusal of the server's (a constraint
//   violation), the store's own GafferErrors, a bug.
// A catalogue error made here keeps the driver's error as its `cause`, and
// its SQLSTATE, when it has one, as `details.sqlstate`. serverAnswered tells
// a caller whether a failed statement may still have committed.
import pg from 'pg';
import type { Clock, Random } from '../../types/clock.ts';
import { GafferError } from '../../types/errors.ts';
import { POSTGRES_DEFAULTS } from '../../types/limits.ts';
import { UNSTORABLE_TEXT } from '../../types/schemas.ts';
import { ATTEMPT_TRANSITIONS, JOB_TRANSITIONS } from '../../types/states.ts';
import type { Row } from '../rows.ts';
import { MIGRATIONS } from './schema.ts';

export type Param = string | number | boolean | null | readonly string[] | readonly number[] | readonly (string | null)[];

/** One connection's way to run SQL: inside a transaction, or a single autocommit read. */
export interface Sql {
  all(text: string, params?: readonly Param[]): Promise<Row[]>;
  get(text: string, params?: readonly Param[]): Promise<Row | undefined>;
  /** Runs a statement and returns how many rows it touched. */
  run(text: string, params?: readonly Param[]): Promise<number>;
}

/** A transaction in progress: its SQL, and a wake-up to send when (and only if) it commits. */
export interface Tx extends Sql {
  /** Sends one NOTIFY on the wake channel at commit: new work may be claimable. */
  wake(): void;
}

export interface PgOptions {
  /** A postgres:// URL. Either this or `pool`. */
  url?: string;
  /** A pool the caller owns: the store uses it and does not end it on close. */
  pool?: pg.Pool;
  /** The schema holding Gaffer's tables: created when missing, and the search_path of every connection the store uses. */
  schema?: string;
  /** Most pooled connections, when the store makes its own pool (POSTGRES_DEFAULTS.poolMax). */
  poolMax?: number;
  /** The injected clock: the wait before a transaction runs again, and schema_migrations.applied_at. */
  clock: Clock;
  /** The injected randomness: the jitter of that wait. */
  random: Random;
}

/** SQLSTATEs after which the whole transaction was rolled back and may be run again as it is. */
const RETRYABLE = new Set([
  '40001', // serialization_failure
  '40P01', // deadlock_detected
]);

/** Node's socket errors: the server or the way to it is gone. */
const UNREACHABLE_ERRNOS = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN',
]);

/** SQLSTATEs of a server that cannot serve: class 08 (connection exceptions, matched by prefix) and these. */
const UNREACHABLE_SQLSTATES = new Set([
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up)
]);

/** SQLSTATEs of a server that answered but could not do it now; nothing was changed. */
const BUSY_SQLSTATES = new Set([
  ...RETRYABLE, // once the retries ran out, or in a read, which is not retried
  '55P03', // lock_not_available (NOWAIT)
  '57014', // query_canceled (a statement timeout)
  '53300', // too_many_connections
]);

/** The driver's messages, without a code, for a connection that is gone or could not be opened. */
const UNREACHABLE_MESSAGES = [
  /connection terminated/i,
  /not queryable/i,
  /cannot use a pool after calling end/i,
  /connection (?:refused|reset)/i,
];

/** pg-pool's message when no connection came free (or none opened) within connectionTimeoutMillis. */
const BUSY_MESSAGES = [/timeout exceeded when trying to connect/i];

/** A schema name the store accepts: a plain SQL identifier, so that it needs no quoting games anywhere. */
const SCHEMA_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/** The wake channel: one per database; the payload names the schema, and each store ignores other schemas and itself. */
export const WAKE_CHANNEL = 'gaffer_wake';

const NOTIFY_SQL = 'SELECT pg_notify($1, $2)';

export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

export class PgDb {
  readonly pool: pg.Pool;
  /** The schema the tables are in (current_schema() when none was given). */
  schema = '';
  /** What a NOTIFY from this store carries: the schema and this store's id, so that it can ignore its own. */
  private wakePayload = '';
  private readonly ownsPool: boolean;
  private readonly searchPath: string | null;
  /** Connections of a caller's pool on which this store has set its search_path. */
  private readonly configured = new WeakSet<pg.PoolClient>();
  /** Connections that carry this store's error listener. */
  private readonly guarded = new WeakSet<pg.PoolClient>();
  private closed = false;
  private readonly clock: Clock;
  private readonly random: Random;

  private constructor(options: PgOptions) {
    if (options.schema !== undefined && !SCHEMA_NAME.test(options.schema)) {
      throw new GafferError('INVALID_INPUT', `schema must be a plain identifier (letters, digits, _; at most 63), got ${JSON.stringify(options.schema)}`);
    }
    this.searchPath = options.schema === undefined ? null : quoteIdent(options.schema);
    this.clock = options.clock;
    this.random = options.random;
    if (options.pool) {
      this.pool = options.pool;
      this.ownsPool = false;
    } else {
      if (options.url === undefined) throw new GafferError('INVALID_INPUT', 'openPostgresStore needs a url or a pool');
      this.pool = new pg.Pool({
        connectionString: options.url,
        max: options.poolMax ?? POSTGRES_DEFAULTS.poolMax,
        connectionTimeoutMillis: POSTGRES_DEFAULTS.connectTimeoutMs,
        idleTimeoutMillis: POSTGRES_DEFAULTS.idleTimeoutMs,
        application_name: 'gaffer',
        // The search_path rides on the start-up packet: no extra round trip per connection.
        ...(this.searchPath !== null ? { options: `-c search_path=${this.searchPath}` } : {}),
      });
      this.ownsPool = true;
      // An idle connection that dies (a server restart) must not crash the process; the next checkout opens a new one.
      this.pool.on('error', () => {});
    }
  }

  /** The channel and payload of this store's wake-up NOTIFY, for a statement that sends it itself. */
  notifyArgs(): [string, string] {
    return [WAKE_CHANNEL, this.wakePayload];
  }

  /** Connects, creates the schema when missing, migrates, and loads the transition tables. */
  static async open(options: PgOptions, storeId: string): Promise<PgDb> {
    const db = new PgDb(options);
    try {
      await db.migrate(options.schema);
      const row = await db.read((sql) => sql.get('SELECT current_schema() AS s'));
      db.schema = String(row?.s ?? '');
      db.wakePayload = JSON.stringify({ schema: db.schema, from: storeId });
      return db;
    } catch (err) {
      await db.close();
      throw err;
    }
  }

  /** Whether a wake payload came from another store on this schema. */
  wakeIsForUs(payload: string | undefined, storeId: string): boolean {
    try {
      const p = JSON.parse(payload ?? '') as { schema?: unknown; from?: unknown };
      return p.schema === this.schema && p.from !== storeId;
    } catch {
      return false;
    }
  }

  /**
   * Runs the migrations not yet recorded, and reloads the transition tables, in
   * one transaction under an advisory lock on the schema's name: coordinators
   * starting at once take turns, and the later ones find the work done.
   */
  private async migrate(schema: string | undefined): Promise<void> {
    await this.tx(async (sql) => {
      await sql.get('SELECT pg_advisory_xact_lock(hashtext($1))', [`gaffer.migrate:${schema ?? ''}`]);
      // Existence is checked first, so that a user who may not create schemas or tables can still
      // start against a database that was set up already.
      if (schema !== undefined) {
        const found = await sql.get('SELECT 1 AS ok FROM pg_namespace WHERE nspname = $1', [schema]);
        if (!found) await sql.run(`CREATE SCHEMA ${quoteIdent(schema)}`);
        // Whatever the session's search_path was when the schema did not exist yet, the DDL below goes into it.
        await sql.run(`SET LOCAL search_path TO ${quoteIdent(schema)}`);
      }
      const table = await sql.get(`SELECT to_regclass('schema_migrations') IS NOT NULL AS ok`);
      if (table?.ok !== true) {
        await sql.run('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)');
      }
      const row = await sql.get('SELECT max(version) AS v FROM schema_migrations');
      const current = row?.v === null || row?.v === undefined ? 0 : Number(row.v);
      for (const m of MIGRATIONS) {
        if (m.version <= current) continue;
        await sql.run(m.sql);
        await sql.run('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [m.version, m.name, this.clock.now()]);
      }
      await sql.run('DELETE FROM job_transitions');
      await sql.run('DELETE FROM attempt_transitions');
      await sql.run('INSERT INTO job_transitions (from_state, to_state) SELECT * FROM unnest($1::text[], $2::text[])', [
        JOB_TRANSITIONS.map((t) => t.from),
        JOB_TRANSITIONS.map((t) => t.to),
      ]);
      await sql.run('INSERT INTO attempt_transitions (from_state, to_state) SELECT * FROM unnest($1::text[], $2::text[])', [
        ATTEMPT_TRANSITIONS.map((t) => t.from),
        ATTEMPT_TRANSITIONS.map((t) => t.to),
      ]);
    }, { prepared: false });
  }

  private async connect(): Promise<pg.PoolClient> {
    if (this.closed) throw new GafferError('NOT_READY', 'the store is closed');
    const client = await this.pool.connect();
    if (!this.guarded.has(client)) {
      // pg-pool listens for errors only on idle connections: one that dies while checked out (a
      // server restart mid-call) would emit an unhandled 'error' and crash the process. The failure
      // reaches the caller through its query anyway, and pg-pool drops the dead connection on release.
      client.on('error', () => {});
      this.guarded.add(client);
    }
    if (!this.ownsPool && this.searchPath !== null && !this.configured.has(client)) {
      try {
        await client.query(`SET search_path TO ${this.searchPath}`);
      } catch (err) {
        client.release(err as Error);
        throw err;
      }
      this.configured.add(client);
    }
    return client;
  }

  /** One autocommit statement or a few reads on one connection, outside any transaction. Rejects as the top of this file says. */
  async read<T>(fn: (sql: Sql) => Promise<T>): Promise<T> {
    try {
      return await this.readOnce(fn);
    } catch (err) {
      throw storeError(err);
    }
  }

  /** read, with a stale plan run once more on a fresh connection; rejects with the driver's own errors. */
  private async readOnce<T>(fn: (sql: Sql) => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const client = await this.connect();
      try {
        const out = await fn(sqlOf(client));
        client.release();
        return out;
      } catch (err) {
        // pg-pool drops a connection released with an error, or no longer queryable, instead of reusing it.
        // One the server just terminated may not know it yet (its socket's end not read): dropped too.
        const stale = isStalePlan(err);
        client.release(stale || failureKind(err) === 'NOT_READY' ? (err as Error) : undefined);
        if (!stale || attempt >= 1) throw err;
      }
    }
  }

  /**
   * Runs fn in one READ COMMITTED transaction. A deadlock or serialization
   * failure rolls it back whole; it is then run again, up to
   * POSTGRES_DEFAULTS.txRetryMax times, after which the caller gets STORE_BUSY.
   * fn must keep no state across runs: everything it returns is made anew.
   * Rejects as the top of this file says.
   */
  async tx<T>(fn: (tx: Tx) => Promise<T>, options: { prepared?: boolean } = {}): Promise<T> {
    try {
      return await this.txRuns(fn, options);
    } catch (err) {
      throw storeError(err);
    }
  }

  /** tx's runs and retries; rejects with the driver's own errors, or STORE_BUSY once the retries ran out. */
  private async txRuns<T>(fn: (tx: Tx) => Promise<T>, options: { prepared?: boolean }): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const client = await this.connect();
      let wake = false;
      let began = false;
      try {
        await client.query('BEGIN');
        began = true;
        const out = await fn({ ...sqlOf(client, options.prepared ?? true), wake: () => void (wake = true) });
        if (wake) await client.query({ name: statementName(NOTIFY_SQL), text: NOTIFY_SQL, values: [WAKE_CHANNEL, this.wakePayload] });
        await client.query('COMMIT');
        client.release();
        return out;
      } catch (err) {
        // Roll back what the transaction did; a connection that cannot even do that is dropped from the pool.
        let dead: Error | undefined;
        if (began) await client.query('ROLLBACK').catch((e: unknown) => void (dead = e as Error));
        const stale = isStalePlan(err);
        client.release(dead ?? (stale ? (err as Error) : undefined));
        const code = (err as { code?: unknown }).code;
        if (stale && attempt === 0) continue;
        if (typeof code !== 'string' || !RETRYABLE.has(code)) throw err;
        if (attempt >= POSTGRES_DEFAULTS.txRetryMax) {
          throw withCause(new GafferError('STORE_BUSY', `the transaction lost a race ${attempt + 1} times (${(err as Error).message})`, { sqlstate: code }), err);
        }
        await this.retryWait(attempt);
      }
    }
  }

  /** Before run attempt + 2: base * (attempt + 1), between half and all of it, on the injected clock. */
  private retryWait(attempt: number): Promise<void> {
    const delayMs = POSTGRES_DEFAULTS.txRetryBaseDelayMs * (attempt + 1) * (0.5 + this.random.next() / 2);
    return new Promise((resolve) => void this.clock.setTimeout(resolve, delayMs));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.ownsPool) await this.pool.end();
  }
}

/**
 * What a failure of a read or a transaction means for its caller (the top of
 * this file): NOT_READY, STORE_BUSY, or the error itself when it is neither.
 */
export function storeError(err: unknown): unknown {
  if (err instanceof GafferError) return err;
  const kind = failureKind(err);
  if (kind === null) return err;
  const e = err as { code?: unknown; message?: unknown };
  const reason = typeof e.message === 'string' && e.message !== '' ? e.message : String(e.code ?? 'no reason given');
  const sqlstate = err instanceof pg.DatabaseError ? err.code : undefined;
  const message = kind === 'NOT_READY' ? `the store is unavailable: ${reason}` : `the store could not do this now: ${reason}`;
  return withCause(new GafferError(kind, message, sqlstate === undefined ? undefined : { sqlstate }), err);
}

/**
 * Whether a failed read or transaction was refused, so that nothing was
 * changed: the server answered (STORE_BUSY, or a refusal such as a constraint
 * violation, which passes through as the driver's DatabaseError), or the
 * store's own code refused it (its other GafferErrors). False for NOT_READY:
 * the connection failed, and a statement in flight may have committed; and
 * false for an error of unknown origin, which is as uncertain.
 */
export function serverAnswered(err: unknown): boolean {
  if (err instanceof GafferError) return err.code !== 'NOT_READY';
  return err instanceof pg.DatabaseError;
}

/** Which of the two a driver's error is, by its code or (when it has none) its message; null: neither. */
function failureKind(err: unknown): 'NOT_READY' | 'STORE_BUSY' | null {
  if (typeof err !== 'object' || err === null) return null;
  const e = err as { code?: unknown; message?: unknown; errors?: unknown };
  const code = typeof e.code === 'string' ? e.code : '';
  const message = typeof e.message === 'string' ? e.message : '';
  if (UNREACHABLE_ERRNOS.has(code) || UNREACHABLE_SQLSTATES.has(code) || /^08[0-9A-Z]{3}$/.test(code)) return 'NOT_READY';
  if (BUSY_SQLSTATES.has(code)) return 'STORE_BUSY';
  // Any other answer of the server's is a refusal, whatever its message says.
  if (err instanceof pg.DatabaseError) return null;
  if (UNREACHABLE_MESSAGES.some((re) => re.test(message))) return 'NOT_READY';
  if (BUSY_MESSAGES.some((re) => re.test(message))) return 'STORE_BUSY';
  // Node gives an AggregateError (code ECONNREFUSED or none) when every address of a host refused.
  if (Array.isArray(e.errors) && e.errors.length > 0 && e.errors.every((inner) => failureKind(inner) === 'NOT_READY')) return 'NOT_READY';
  return null;
}

/** The driver's error as `cause`, not enumerable (as Error's own option makes it): kept out of JSON and equality. */
function withCause(err: GafferError, cause: unknown): GafferError {
  Object.defineProperty(err, 'cause', { value: cause, writable: true, configurable: true, enumerable: false });
  return err;
}

/**
 * A prepared `SELECT *` whose table gained a column (another coordinator ran a
 * newer migration): the statement is stale on that connection. The connection
 * is dropped and the call runs once more on a fresh one.
 */
function isStalePlan(err: unknown): boolean {
  return (err as { code?: unknown }).code === '0A000' && /cached plan must not change result type/.test(String((err as Error).message));
}

/**
 * Statement names by SQL text: the first run of a text on a connection
 * prepares it under its name, later runs skip parsing and planning. The store
 * runs a bounded set of texts (listJobs's filters make the most variants), so
 * the map stays small.
 */
const statementNames = new Map<string, string>();

function statementName(text: string): string {
  let name = statementNames.get(text);
  if (name === undefined) {
    name = `gaffer_${statementNames.size + 1}`;
    statementNames.set(text, name);
  }
  return name;
}


/**
 * PostgreSQL's text holds no NUL (the server refuses it) and no lone
 * surrogate (the driver would send U+FFFD, so two different strings would
 * compare equal). Submit validation refuses both; anything else that brings
 * one (an id in a URL, say) is refused here, before it reaches the server.
 * JSON columns never do: JSON.stringify escapes both.
 */
export function assertStorable(params: readonly Param[]): void {
  for (const p of params) {
    const bad = typeof p === 'string' ? UNSTORABLE_TEXT.test(p) : Array.isArray(p) && p.some((x) => typeof x === 'string' && UNSTORABLE_TEXT.test(x));
    if (bad) {
      throw new GafferError('INVALID_INPUT', 'text with a NUL character or an unpaired UTF-16 surrogate cannot be stored or looked up');
    }
  }
}

/** SQL on one connection; `prepared`: as named statements (not for DDL, nor for a text run once). */
function sqlOf(client: pg.PoolClient, prepared = true): Sql {
  const query = (text: string, params: readonly Param[]) => {
    assertStorable(params);
    return client.query(prepared ? { name: statementName(text), text, values: params as unknown[] } : { text, values: params as unknown[] });
  };
  const all = async (text: string, params: readonly Param[] = []): Promise<Row[]> => (await query(text, params)).rows as Row[];
  return {
    all,
    get: async (text, params) => (await all(text, params))[0],
    run: async (text, params = []) => (await query(text, params)).rowCount ?? 0,
  };
}
