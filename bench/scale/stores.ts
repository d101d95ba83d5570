// The stores the scale runs measure: a fresh SQLite file or PostgreSQL schema
// each time, opened in the bench process through the store's public factory,
// as `gaffer serve` opens them. For the diagnosis each store can also time the
// SQL statements a call runs (by wrapping its database handle for a while)
// and explain a statement's plan. Both reach into the store's private
// database handle: diagnosis only, never used by the timed claims.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type pg from 'pg';
import type { PgDb, Param as PgParam, Tx } from '../../src/store/postgres/db.ts';
import { openPostgresStore } from '../../src/store/postgres/store.ts';
import type { SqliteDb, Param as SqliteParam } from '../../src/store/sqlite/db.ts';
import { openSqliteStore } from '../../src/store/sqlite/store.ts';
import type { Store } from '../../src/store/store.ts';
import { systemClock, systemRandom } from '../../src/types/clock.ts';
import type { PgServer } from './pg.ts';

export type StoreKind = 'sqlite' | 'postgres';

/** One SQL text as a profiled call ran it: how often and how long, with the last parameters seen. */
export interface StatementTiming {
  sql: string;
  calls: number;
  totalMs: number;
  lastParams: unknown[];
}

export interface OpenStore {
  kind: StoreKind;
  store: Store;
  /** Where the data lives: a file path, or a schema. */
  where: string;
  /** The arguments that make `gaffer serve` open this same database. */
  serveArgs: string[];
  /** PostgreSQL: ANALYZE of the store's tables (after a bulk load); SQLite: nothing, as `gaffer serve` runs none. Returns its time in ms, or null. */
  analyze(): Promise<number | null>;
  /** Starts timing every statement the store runs; stop() returns the timings. */
  profile(): { stop(): ProfileResult };
  /** The plan of a statement with these parameters: SQLite's EXPLAIN QUERY PLAN; PostgreSQL's EXPLAIN (ANALYZE, BUFFERS), custom and generic, in a transaction rolled back. */
  explain(sql: string, params: readonly unknown[]): Promise<{ label: string; lines: string[] }[]>;
  /** Closes the bench's handle; the data stays (for a coordinator to open). */
  close(): Promise<void>;
  /** Closes (if open) and removes the data. */
  destroy(): Promise<void>;
}

export interface StoreFactory {
  kind: StoreKind;
  /** How the store is set up, for the report. */
  setup: string;
  /** A fresh, empty store. */
  open(name: string): Promise<OpenStore>;
}

/** Whitespace collapsed, so that one statement reads on one line. */
export function oneLine(sql: string): string {
  return sql.replace(/\s+/g, ' ').trim();
}

/** How often a prepared statement was planned generic and custom (PostgreSQL's pg_prepared_statements), on one connection. */
export interface PlanCacheStat {
  sql: string;
  genericPlans: number;
  customPlans: number;
}

export interface ProfileResult {
  timings: StatementTiming[];
  /** PostgreSQL: the plan cache counts of the statements run, on the connection of the last call profiled. */
  planCache: PlanCacheStat[];
}

function recorder(): { record(sql: string, ms: number, params: unknown[]): void; timings(): StatementTiming[] } {
  const bySql = new Map<string, StatementTiming>();
  return {
    record(sql, ms, params) {
      const t = bySql.get(sql) ?? { sql, calls: 0, totalMs: 0, lastParams: [] };
      t.calls += 1;
      t.totalMs += ms;
      t.lastParams = params;
      bySql.set(sql, t);
    },
    timings: () => [...bySql.values()],
  };
}

// ---- SQLite ----

export function sqliteFactory(dir: string, synchronous: 'full' | 'normal'): StoreFactory {
  const openAt = (path: string): OpenStore => {
    const store = openSqliteStore({ path, clock: systemClock, random: systemRandom(), synchronous });
    const db = (store as unknown as { db: SqliteDb }).db;
    let closed = false;
    const handle: OpenStore = {
      kind: 'sqlite',
      store,
      where: path,
      serveArgs: ['--db', path],
      analyze: async () => null,
      profile() {
        const rec = recorder();
        const original = { stmt: db.stmt, exec: db.db.exec };
        // Every statement the store runs is prepared through stmt(): time its all, get and run.
        db.stmt = (sql: string) => {
          const st = original.stmt.call(db, sql);
          const timed = <R>(fn: (...params: SqliteParam[]) => R) =>
            (...params: SqliteParam[]): R => {
              const t0 = performance.now();
              try {
                return fn.apply(st, params);
              } finally {
                rec.record(sql, performance.now() - t0, params);
              }
            };
          return { all: timed(st.all), get: timed(st.get), run: timed(st.run) } as unknown as ReturnType<typeof original.stmt>;
        };
        // BEGIN IMMEDIATE and COMMIT (the commit's sync to disk) go through exec.
        db.db.exec = (sql: string): void => {
          const t0 = performance.now();
          try {
            original.exec.call(db.db, sql);
          } finally {
            rec.record(sql, performance.now() - t0, []);
          }
        };
        return {
          stop() {
            db.stmt = original.stmt;
            db.db.exec = original.exec;
            return { timings: rec.timings(), planCache: [] };
          },
        };
      },
      async explain(sql, params) {
        const rows = db.db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...(params as SqliteParam[])) as { id: number; parent: number; detail: string }[];
        const depth = new Map<number, number>([[0, 0]]);
        const lines = rows.map((r) => {
          const d = (depth.get(r.parent) ?? 0) + 1;
          depth.set(r.id, d);
          return `${'  '.repeat(d - 1)}${r.detail}`;
        });
        return [{ label: 'EXPLAIN QUERY PLAN', lines }];
      },
      async close() {
        if (closed) return;
        closed = true;
        await store.close();
      },
      async destroy() {
        await handle.close();
        for (const suffix of ['', '-wal', '-shm']) rmSync(`${path}${suffix}`, { force: true });
      },
    };
    return handle;
  };
  return {
    kind: 'sqlite',
    setup: `one SQLite file (WAL), synchronous=${synchronous.toUpperCase()}${synchronous === 'full' ? ' (the default of `gaffer serve`)' : ''}; no ANALYZE, as the store runs none`,
    async open(name) {
      const path = join(dir, `${name}.db`);
      for (const suffix of ['', '-wal', '-shm']) rmSync(`${path}${suffix}`, { force: true });
      return openAt(path);
    },
  };
}

// ---- PostgreSQL ----

/** A parameter as an SQL literal, for EXECUTE of a prepared statement (the generic plan). */
function literal(client: pg.Client, v: unknown): string {
  if (v === null || v === undefined) return 'NULL';
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (Array.isArray(v)) return v.length === 0 ? `'{}'` : `ARRAY[${v.map((x) => literal(client, x)).join(', ')}]`;
  return client.escapeLiteral(String(v));
}

export function postgresFactory(server: PgServer): StoreFactory {
  const openIn = async (schema: string): Promise<OpenStore> => {
    const store = await openPostgresStore({ url: server.url, schema, clock: systemClock, random: systemRandom() });
    const db = (store as unknown as { db: PgDb }).db;
    let closed = false;
    const handle: OpenStore = {
      kind: 'postgres',
      store,
      where: `schema ${schema}`,
      serveArgs: ['--db', server.url, '--pg-schema', schema],
      async analyze() {
        const t0 = performance.now();
        await server.withClient(schema, async (c) => {
          for (const table of ['jobs', 'job_deps', 'attempts', 'workers']) await c.query(`ANALYZE ${table}`);
        });
        return performance.now() - t0;
      },
      profile() {
        const rec = recorder();
        const original = db.tx;
        const wrap = (tx: Tx): Tx => {
          const timed = <R>(fn: (text: string, params?: readonly PgParam[]) => Promise<R>) =>
            async (text: string, params?: readonly PgParam[]): Promise<R> => {
              const t0 = performance.now();
              try {
                return await fn(text, params);
              } finally {
                rec.record(text, performance.now() - t0, [...(params ?? [])]);
              }
            };
          return { all: timed(tx.all), get: timed(tx.get), run: timed(tx.run), wake: tx.wake };
        };
        let planCache: PlanCacheStat[] = [];
        db.tx = <T>(fn: (tx: Tx) => Promise<T>, options?: { prepared?: boolean }): Promise<T> =>
          original.call(
            db,
            async (tx: Tx) => {
              const out = await fn(wrap(tx));
              // Still in the call's transaction, so on its connection: how its prepared statements were planned.
              const rows = await tx.all('SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements');
              planCache = rows.map((r) => ({ sql: String(r.statement), genericPlans: Number(r.generic_plans), customPlans: Number(r.custom_plans) }));
              return out;
            },
            options,
          ) as Promise<T>;
        return {
          stop() {
            db.tx = original;
            const ran = new Set(rec.timings().map((t) => t.sql));
            return { timings: rec.timings(), planCache: planCache.filter((p) => ran.has(p.sql)) };
          },
        };
      },
      async explain(sql, params) {
        return server.withClient(schema, async (c) => {
          const out: { label: string; lines: string[] }[] = [];
          const plan = (rows: { 'QUERY PLAN': string }[]): string[] => rows.map((r) => r['QUERY PLAN']);
          await c.query('BEGIN');
          try {
            const custom = await c.query(`EXPLAIN (ANALYZE, BUFFERS) ${sql}`, params as unknown[]);
            out.push({ label: 'EXPLAIN (ANALYZE, BUFFERS), custom plan (parameters known to the planner)', lines: plan(custom.rows) });
          } finally {
            await c.query('ROLLBACK');
          }
          // The store runs its statements as named prepared statements: after five runs PostgreSQL may keep a generic plan.
          await c.query(`PREPARE gaffer_scale_explain AS ${sql}`);
          await c.query('BEGIN');
          try {
            await c.query('SET LOCAL plan_cache_mode = force_generic_plan');
            const args = params.map((p) => literal(c, p)).join(', ');
            const generic = await c.query(`EXPLAIN (ANALYZE, BUFFERS) EXECUTE gaffer_scale_explain(${args})`);
            out.push({ label: 'EXPLAIN (ANALYZE, BUFFERS) EXECUTE, generic plan (as a prepared statement may be run)', lines: plan(generic.rows) });
          } finally {
            await c.query('ROLLBACK');
            await c.query('DEALLOCATE gaffer_scale_explain');
          }
          return out;
        });
      },
      async close() {
        if (closed) return;
        closed = true;
        await store.close();
      },
      async destroy() {
        await handle.close();
        await server.dropSchema(schema);
      },
    };
    return handle;
  };
  return {
    kind: 'postgres',
    setup: `${server.version.split(',')[0]}: ${server.setup}; one schema per store; ANALYZE after each bulk load`,
    open: async () => openIn(server.newSchema()),
  };
}
