// `gaffer serve`: a coordinator with the HTTP API and the worker endpoint on
// one port, on the embedded SQLite store or, for several coordinators sharing
// one database, on PostgreSQL (`--db postgres://...`).
import type { Command } from 'commander';
import type { Logger } from 'pino';
import { Coordinator } from '../coordinator/coordinator.ts';
import { Auth } from '../server/auth.ts';
import { assertSafeListen, startServer, type RunningServer } from '../server/index.ts';
import { openSqliteStore } from '../store/sqlite/store.ts';
import type { Store } from '../store/store.ts';
import { systemClock, systemRandom } from '../types/clock.ts';
import { GafferError } from '../types/errors.ts';
import { describeDb, isPostgresUrl, serveConfig, type ServeConfig } from './config.ts';
import { createLogger, isPretty, parseLogFormat } from './log-format.ts';
import { logFailedJobs } from './job-log.ts';
import { logWorkers, type WorkerLog } from './worker-log.ts';

export interface Served {
  server: RunningServer;
  coordinator: Coordinator;
  store: Store;
  /** Quarantines, releases and drains in the log (worker-log.ts). */
  workerLog: WorkerLog;
  close(): Promise<void>;
}

export interface ServeOptions {
  /** How often the workers are read for quarantines the store made; QUARANTINE_WATCH_INTERVAL_MS when left out. */
  quarantineWatchIntervalMs?: number;
}

/** Opens the store, starts the coordinator and the server. Used by serve and devstack. */
export async function serve(config: ServeConfig, logger: Logger, options: ServeOptions = {}): Promise<Served> {
  const auth = new Auth(config.tokens);
  // A refused configuration writes nothing: checked before the database is opened.
  assertSafeListen(auth, config.host);
  const store = await openStore(config);
  const coordinator = new Coordinator({
    store,
    clock: systemClock,
    queues: config.queues,
    ...(config.pipelines !== undefined ? { pipelines: config.pipelines } : {}),
    log: logger,
    ...(config.history === false ? { history: false } : {}),
    ...(config.retention !== undefined ? { retention: config.retention } : {}),
    ...(config.speculation !== undefined ? { speculation: config.speculation } : {}),
    ...(config.workerRetentionMs !== undefined ? { workerRetentionMs: config.workerRetentionMs } : {}),
  });
  coordinator.start();
  let server: RunningServer;
  try {
    server = await startServer({ coordinator, auth, host: config.host, port: config.port, logger });
  } catch (err) {
    // e.g. EADDRINUSE: leave no coordinator running on the database (devstack then retries on another port).
    await coordinator.stop();
    await store.close();
    throw err;
  }
  const workerLog = logWorkers(coordinator, logger, options.quarantineWatchIntervalMs);
  const jobLog = logFailedJobs(coordinator, logger);
  return {
    server,
    coordinator,
    store,
    workerLog,
    async close() {
      workerLog.stop();
      jobLog.stop();
      await server.close();
      await coordinator.stop();
      await store.close();
    },
  };
}

/** SQLite for a file, PostgreSQL for a postgres:// URL (its driver is loaded only then). */
async function openStore(config: ServeConfig): Promise<Store> {
  const trust = config.trust !== undefined ? { trust: config.trust } : {};
  if (!isPostgresUrl(config.db)) {
    const sync = config.sqliteSync !== undefined ? { synchronous: config.sqliteSync } : {};
    return openSqliteStore({ path: config.db, clock: systemClock, random: systemRandom(), ...sync, ...trust });
  }
  const { openPostgresStore } = await import('../store/postgres/store.ts');
  try {
    return await openPostgresStore({
      url: config.db,
      clock: systemClock,
      random: systemRandom(),
      ...(config.pgSchema !== undefined ? { schema: config.pgSchema } : {}),
      ...(config.pgPoolMax !== undefined ? { poolMax: config.pgPoolMax } : {}),
      ...trust,
    });
  } catch (err) {
    throw new GafferError('NOT_READY', `cannot open the PostgreSQL database ${describeDb(config.db)}: ${(err as Error).message}`);
  }
}

/** How the database is named in the start-up line and logs: never with a password. */
export function databaseLabel(config: ServeConfig): string {
  return config.pgSchema === undefined ? describeDb(config.db) : `${describeDb(config.db)}, schema ${config.pgSchema}`;
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('run a coordinator: HTTP API and worker endpoint on one port, jobs in a SQLite file or a shared PostgreSQL database')
    .option('--port <port>', 'port to listen on (env GAFFER_PORT, default 7070)')
    .option('--host <host>', 'address to listen on (env GAFFER_HOST, default 127.0.0.1)')
    .option('--db <path|url>', 'SQLite database file, or postgres://... for several coordinators on one PostgreSQL database (env GAFFER_DB, default .gaffer/gaffer.db)')
    .option('--pg-schema <name>', 'PostgreSQL: the schema for Gaffer\'s tables (env GAFFER_PG_SCHEMA)')
    .option('--pg-pool-max <n>', 'PostgreSQL: most connections this coordinator opens (env GAFFER_PG_POOL_MAX)')
    .option('--sqlite-sync <mode>', 'SQLite: full (default) waits for the disk on every commit holding a submit or a result; normal never does, so a power cut may lose the last commits (env GAFFER_SQLITE_SYNC)')
    .option('--no-history', 'keep no queue history (the minute rows behind the dashboard\'s charts and GET /v1/history); on by default')
    .option('--config <file>', 'TOML config file: [server], [[tokens]], [queues.NAME] (with verify, adaptive, challenge), [pipelines.NAME], [trust]')
    .option('--token <token>', 'one bearer token with every scope (env GAFFER_TOKEN)')
    .option('--log-level <level>', 'fatal, error, warn, info (start, workers, quarantines, store trouble), debug (also one line per HTTP request)', 'info')
    .option('--log-format <format>', 'pretty (a line a person reads), json (pino lines for machines), or auto: pretty on a terminal, json otherwise', 'auto')
    .action(async (opts: { port?: string; host?: string; db?: string; pgSchema?: string; pgPoolMax?: string; sqliteSync?: string; history: boolean; config?: string; token?: string; logLevel: string; logFormat: string }) => {
      const config = serveConfig(opts, process.env);
      const format = parseLogFormat(opts.logFormat);
      const logger = createLogger(opts.logLevel, format);
      const served = await serve(config, logger);
      const db = databaseLabel(config);
      // The line below says it to a person; the JSON line is for machines reading the log.
      if (!isPretty(format)) logger.info({ url: served.server.url, metrics: `${served.server.url}/metrics`, db, store: served.store.kind, auth: config.tokens.length > 0 }, 'gaffer coordinator listening');
      console.log(`gaffer: listening on ${served.server.url} (database ${db})`);
      const stop = (signal: string): void => {
        logger.info({ signal }, 'shutting down');
        void served.close().then(() => process.exit(0));
      };
      process.once('SIGINT', () => stop('SIGINT'));
      process.once('SIGTERM', () => stop('SIGTERM'));
    });
}
