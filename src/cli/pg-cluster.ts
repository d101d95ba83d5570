// A private, throwaway PostgreSQL cluster for a test that stops and starts the
// database under running coordinators (multi.solo.test.ts). It is the test's own, so
// restarting it disturbs no other test that shares the suite's database (the
// store's test cluster in src/store/postgres/testing.ts is shared, and offers
// no restart). It needs the server binaries even when GAFFER_TEST_PG_URL is set.
//
// It listens on 127.0.0.1 and skips fsync (a fast shutdown still writes
// everything; nothing here survives a power cut, nor needs to). It is stopped
// when the test process exits.
import { clusterUnavailable, startCluster } from '../store/postgres/cluster.ts';
import { PG_TEST_HELP } from '../store/postgres/testing.ts';

export interface PgCluster {
  /** postgres://postgres@127.0.0.1:PORT/postgres */
  url: string;
  port: number;
  dataDir: string;
  /** Stops the server (fast shutdown: connections are cut, as in a real restart); resolves once it is down. */
  stop(): Promise<void>;
  /** Starts it again on the same port and data dir; resolves once it accepts connections. */
  start(): Promise<void>;
  /** Stops it and removes its files. */
  destroy(): Promise<void>;
}

export async function startPgCluster(): Promise<PgCluster> {
  const why = clusterUnavailable();
  if (why) throw new Error(`cannot start a private PostgreSQL cluster: ${why}.\n${PG_TEST_HELP}`);
  const cluster = await startCluster({
    settings: { fsync: 'off', full_page_writes: 'off', max_connections: 200 },
    initdbNoSync: true,
    commandMs: 90_000,
  });
  return {
    url: cluster.tcpUrl,
    port: cluster.port,
    dataDir: cluster.dataDir,
    stop: () => cluster.stop('fast'),
    start: () => cluster.start(),
    destroy: () => cluster.destroy(),
  };
}
