// `gaffer serve`: a coordinator on the embedded store, with the HTTP API and
// the worker endpoint on one port.
import type { Command } from 'commander';
import { pino, type Logger } from 'pino';
import { Coordinator } from '../coordinator/coordinator.ts';
import { Auth } from '../server/auth.ts';
import { assertSafeListen, startServer, type RunningServer } from '../server/index.ts';
import { openSqliteStore } from '../store/sqlite/store.ts';
import type { Store } from '../store/store.ts';
import { systemClock, systemRandom } from '../types/clock.ts';
import { serveConfig, type ServeConfig } from './config.ts';

export interface Served {
  server: RunningServer;
  coordinator: Coordinator;
  store: Store;
  close(): Promise<void>;
}

/** Opens the store, starts the coordinator and the server. Used by serve and devstack. */
export async function serve(config: ServeConfig, logger: Logger): Promise<Served> {
  const auth = new Auth(config.tokens);
  // A refused configuration writes nothing: checked before the database is opened.
  assertSafeListen(auth, config.host);
  const store = openSqliteStore({ path: config.db, clock: systemClock, random: systemRandom() });
  const coordinator = new Coordinator({ store, clock: systemClock, queues: config.queues, log: logger });
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
  return {
    server,
    coordinator,
    store,
    async close() {
      await server.close();
      await coordinator.stop();
      await store.close();
    },
  };
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('run a coordinator: HTTP API and worker endpoint on one port, jobs in a SQLite file')
    .option('--port <port>', 'port to listen on (env GAFFER_PORT, default 7070)')
    .option('--host <host>', 'address to listen on (env GAFFER_HOST, default 127.0.0.1)')
    .option('--db <path>', 'SQLite database file (env GAFFER_DB, default .gaffer/gaffer.db)')
    .option('--config <file>', 'TOML config file: [server], [[tokens]], [queues.NAME]')
    .option('--token <token>', 'one bearer token with every scope (env GAFFER_TOKEN)')
    .option('--log-level <level>', 'fatal, error, warn, info, debug', 'info')
    .action(async (opts: { port?: string; host?: string; db?: string; config?: string; token?: string; logLevel: string }) => {
      const config = serveConfig(opts, process.env);
      const logger = pino({ level: opts.logLevel });
      const served = await serve(config, logger);
      logger.info({ url: served.server.url, db: config.db, auth: config.tokens.length > 0 }, 'gaffer coordinator listening');
      console.log(`gaffer: listening on ${served.server.url} (database ${config.db})`);
      const stop = (signal: string): void => {
        logger.info({ signal }, 'shutting down');
        void served.close().then(() => process.exit(0));
      };
      process.once('SIGINT', () => stop('SIGINT'));
      process.once('SIGTERM', () => stop('SIGTERM'));
    });
}
