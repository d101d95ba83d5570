// PostgreSQL for the scale runs: a throwaway cluster (initdb into a temp dir,
// pg_ctl start on a free port of 127.0.0.1, as the postgres user when run as
// root), or a server of the caller's (--pg-url). The cluster keeps PostgreSQL's
// stock settings (fsync, synchronous_commit and full_page_writes on, 128 MB of
// shared buffers, autovacuum on) apart from its address, port and socket
// directory. Each store the runs open lives in a schema of its own,
// `gaffer_scale_<random>`, dropped when done.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort, onExit } from './util.ts';

const PG_BOUNDS = {
  /** initdb, and pg_ctl start/stop with -w, each get this long. */
  commandMs: 180_000,
  /** pg_ctl's own wait (-t), in seconds. */
  pgCtlWaitS: 120,
} as const;

export interface PgServer {
  /** postgres://postgres@127.0.0.1:PORT/postgres, or the URL given. */
  url: string;
  /** `PostgreSQL 15.x ...` as the server reports it. */
  version: string;
  /** How the server runs, for the report. */
  setup: string;
  /** A fresh, empty schema name (not created: the store creates it). */
  newSchema(): string;
  /** Drops a schema made by newSchema, with everything in it. */
  dropSchema(schema: string): Promise<void>;
  /** Runs SQL with this search_path on one connection of its own. */
  withClient<T>(schema: string, fn: (client: pg.Client) => Promise<T>): Promise<T>;
  stop(): Promise<void>;
}

function binDir(): string | null {
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
  return which.status === 0 && found !== '' && has(found) ? found : null;
}

function postgresOwner(): { uid: number; gid: number } | null {
  if (process.getuid?.() !== 0) return null;
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('postgres:'));
  const [, , uid, gid] = line?.split(':') ?? [];
  if (!uid || !gid) throw new Error('running as root, and there is no postgres user to run PostgreSQL as');
  return { uid: Number(uid), gid: Number(gid) };
}

function argv(bin: string, args: string[], asPostgres: boolean): [string, string[]] {
  return asPostgres ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args];
}

function run(bin: string, args: string[], asPostgres: boolean): Promise<void> {
  const [cmd, list] = argv(bin, args, asPostgres);
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, list, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), PG_BOUNDS.commandMs);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`${bin} ${args[0] ?? ''} failed (${code ?? signal}):\n${out.slice(-4000)}`));
    });
  });
}

export const PG_HELP =
  'The PostgreSQL runs need PostgreSQL\'s server binaries (Debian: apt-get install -y postgresql), from which they start a ' +
  'throwaway cluster, or --pg-url postgres://user:password@host:5432/db of a server where they may create and drop schemas. ' +
  'Or run with --store sqlite.';

/** `unsafeFastCommits` (smoke runs only): synchronous_commit off, so commits skip the fsync wait. */
export async function startPostgres(url?: string, options: { unsafeFastCommits?: boolean } = {}): Promise<PgServer> {
  if (url !== undefined) return server(url, 'a server of the caller\'s (--pg-url), its own settings', async () => {});
  const bin = binDir();
  if (bin === null) throw new Error(`no PostgreSQL server binaries (initdb, pg_ctl) were found. ${PG_HELP}`);
  const owner = postgresOwner();
  const dir = mkdtempSync(join(tmpdir(), 'gaffer-scale-pg-'));
  if (owner) chownSync(dir, owner.uid, owner.gid);
  const data = join(dir, 'data');
  const pgCtl = join(bin, 'pg_ctl');
  let running = false;
  const removeHook = onExit(() => {
    if (running) {
      const [cmd, list] = argv(pgCtl, ['stop', '-D', data, '-m', 'immediate', '-w', '-t', '30'], owner !== null);
      spawnSync(cmd, list, { stdio: 'ignore', timeout: PG_BOUNDS.commandMs });
      running = false;
    }
    rmSync(dir, { recursive: true, force: true });
  });
  try {
    await run(join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-instructions'], owner !== null);
    const port = await freePort();
    const fast = options.unsafeFastCommits === true;
    const settings = [`-c listen_addresses=127.0.0.1`, `-p ${port}`, `-k ${dir}`, ...(fast ? ['-c synchronous_commit=off'] : [])].join(' ');
    running = true;
    await run(pgCtl, ['start', '-D', data, '-l', join(dir, 'server.log'), '-w', '-t', String(PG_BOUNDS.pgCtlWaitS), '-o', settings], owner !== null);
    const setup = fast
      ? 'a throwaway cluster on 127.0.0.1 with the stock settings but synchronous_commit off (a smoke run); the coordinator and the bench connect over TCP'
      : 'a throwaway cluster on 127.0.0.1 with the stock settings (fsync, synchronous_commit and full_page_writes on, shared_buffers 128 MB, autovacuum on); the coordinator and the bench connect over TCP';
    return await server(`postgres://postgres@127.0.0.1:${port}/postgres`, setup, async () => {
      if (running) {
        await run(pgCtl, ['stop', '-D', data, '-m', 'fast', '-w', '-t', String(PG_BOUNDS.pgCtlWaitS)], owner !== null);
        running = false;
      }
      rmSync(dir, { recursive: true, force: true });
      removeHook();
    });
  } catch (err) {
    if (running) {
      const [cmd, list] = argv(pgCtl, ['stop', '-D', data, '-m', 'immediate', '-w'], owner !== null);
      spawnSync(cmd, list, { stdio: 'ignore', timeout: PG_BOUNDS.commandMs });
      running = false;
    }
    rmSync(dir, { recursive: true, force: true });
    removeHook();
    throw err;
  }
}

async function server(url: string, setup: string, stop: () => Promise<void>): Promise<PgServer> {
  const admin = new pg.Pool({ connectionString: url, max: 2, application_name: 'gaffer-scale-admin' });
  admin.on('error', () => {});
  const version = String((await admin.query('SELECT version() AS v')).rows[0]?.v ?? 'unknown');
  const made = new Set<string>();
  const quote = (name: string): string => `"${name.replaceAll('"', '""')}"`;
  return {
    url,
    version,
    setup,
    newSchema() {
      const schema = `gaffer_scale_${randomBytes(6).toString('hex')}`;
      made.add(schema);
      return schema;
    },
    async dropSchema(schema) {
      await admin.query(`DROP SCHEMA IF EXISTS ${quote(schema)} CASCADE`);
      made.delete(schema);
    },
    async withClient(schema, fn) {
      const client = new pg.Client({ connectionString: url, application_name: 'gaffer-scale' });
      client.on('error', () => {});
      await client.connect();
      try {
        await client.query(`SET search_path TO ${quote(schema)}`);
        return await fn(client);
      } finally {
        await client.end();
      }
    },
    async stop() {
      for (const schema of [...made]) await admin.query(`DROP SCHEMA IF EXISTS ${quote(schema)} CASCADE`).catch(() => undefined);
      await admin.end();
      await stop();
    },
  };
}
