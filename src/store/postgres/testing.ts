// A PostgreSQL database for tests. The server is GAFFER_TEST_PG_URL when set;
// otherwise this process starts a throwaway cluster of its own (initdb into a
// temp dir, pg_ctl start on a free port of 127.0.0.1, as the postgres user when
// run as root) and stops and removes it when the process exits. Each test then
// takes a fresh schema, `gaffer_test_<random>`, and drops it afterwards, so
// tests and runs never see each other's rows.
//
// When there is neither a URL nor a PostgreSQL installation the tests fail
// with a message saying how to get one: they are never silently skipped.
import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { TrustPolicy } from '../../trust/index.ts';
import type { Clock, Random } from '../../types/clock.ts';
import type { StoreContractOptions } from '../contract.ts';
import { quoteIdent } from './db.ts';
import { openPostgresStore, type PostgresStore, type PostgresStoreOptions } from './store.ts';

export const PG_TEST_HELP =
  'The PostgreSQL store tests need a PostgreSQL server (version 11 or newer). Either install PostgreSQL, and the tests ' +
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
    return await startCluster();
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

/** The directory of initdb and pg_ctl: pg_config --bindir, else the newest /usr/lib/postgresql/N/bin, else the PATH. */
function binDir(): string {
  const has = (dir: string): boolean => existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'pg_ctl'));
  const fromConfig = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' });
  if (fromConfig.status === 0 && has(fromConfig.stdout.trim())) return fromConfig.stdout.trim();
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root).filter((v) => has(join(root, v, 'bin'))).sort((a, b) => Number(b) - Number(a));
    if (versions[0] !== undefined) return join(root, versions[0], 'bin');
  }
  const which = spawnSync('sh', ['-c', 'command -v initdb'], { encoding: 'utf8' });
  const found = which.stdout.trim().replace(/\/initdb$/, '');
  if (which.status === 0 && found !== '' && has(found)) return found;
  throw new Error('no PostgreSQL server binaries (initdb, pg_ctl) were found via pg_config, /usr/lib/postgresql/*/bin or the PATH');
}

/** PostgreSQL refuses to run as root: as root, its commands run as the postgres user. */
function postgresUser(): { uid: number; gid: number } | null {
  if (process.getuid?.() !== 0) return null;
  const uid = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (uid.status !== 0 || gid.status !== 0) throw new Error('running as root, and there is no postgres user to run PostgreSQL as');
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

function command(bin: string, args: string[], asPostgres: boolean): [string, string[]] {
  return asPostgres ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args];
}

function run(bin: string, args: string[], asPostgres: boolean): Promise<void> {
  const [cmd, argv] = command(bin, args, asPostgres);
  return new Promise((resolve, reject) => {
    execFile(cmd, argv, { timeout: CLUSTER_BOUNDS.commandMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${bin} ${args[0] ?? ''} failed: ${err.message}\n${(stdout + stderr).slice(-2000)}`));
      else resolve();
    });
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('no free port'))));
    });
  });
}

/**
 * initdb into a temp dir, then pg_ctl start on a free port, listening on
 * 127.0.0.1 and on a unix socket in the temp dir. Trust authentication, and no
 * fsync: the data is thrown away at exit and need not survive a power cut.
 */
async function startCluster(): Promise<string> {
  const bin = binDir();
  const owner = postgresUser();
  const dir = mkdtempSync(join(tmpdir(), 'gaffer-pg-'));
  const data = join(dir, 'data');
  if (owner) chownSync(dir, owner.uid, owner.gid);
  const pgCtl = join(bin, 'pg_ctl');
  let started = false;
  const stop = (): void => {
    if (started) {
      const [cmd, argv] = command(pgCtl, ['stop', '-D', data, '-m', 'immediate', '-w', '-t', '30'], owner !== null);
      spawnSync(cmd, argv, { stdio: 'ignore', timeout: CLUSTER_BOUNDS.commandMs });
      started = false;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', stop);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      stop();
      process.exit(signal === 'SIGINT' ? 130 : 143);
    });
  }
  try {
    await run(join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-sync'], owner !== null);
    const port = await freePort();
    const settings = [
      '-c listen_addresses=127.0.0.1', `-p ${port}`, `-k ${dir}`, '-c fsync=off', '-c synchronous_commit=off',
      '-c full_page_writes=off', '-c max_connections=200',
    ].join(' ');
    started = true;
    await run(pgCtl, ['start', '-D', data, '-l', join(dir, 'server.log'), '-w', '-t', String(CLUSTER_BOUNDS.startWaitS), '-o', settings], owner !== null);
    // The unix socket: a round trip costs less than over TCP, and the tests make a great many.
    return `postgres://postgres@/postgres?host=${encodeURIComponent(dir)}&port=${port}`;
  } catch (err) {
    stop();
    throw err;
  }
}
