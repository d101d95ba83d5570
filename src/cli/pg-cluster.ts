// A private, throwaway PostgreSQL cluster for a test that stops and starts the
// database under running coordinators (multi.solo.test.ts). It is the test's own, so
// restarting it disturbs no other test that shares the suite's database (the
// store's test cluster in src/store/postgres/testing.ts is shared, and offers
// no restart). It needs the server binaries even when GAFFER_TEST_PG_URL is set.
//
// The cluster lives in a temp dir: initdb, then pg_ctl start/stop by data dir,
// as the postgres user when the tests run as root (PostgreSQL refuses to run as
// root). It listens on 127.0.0.1 only, trusts local connections, and skips
// fsync (a fast shutdown still writes everything; nothing here survives a
// power cut, nor needs to). It is stopped when the test process exits.
import { spawn, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PG_TEST_HELP } from '../store/postgres/testing.ts';
import { freePort } from './testing.ts';

/** Bounds for the cluster's commands. */
const PG_BOUNDS = {
  /** initdb, and pg_ctl start/stop with -w, each get this long. */
  commandMs: 90_000,
  /** pg_ctl's own wait (-t), in seconds. */
  pgCtlWaitS: 60,
} as const;

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

/** The directory of initdb and pg_ctl: $PG_BIN, else the newest /usr/lib/postgresql/N/bin, else the PATH. */
function pgBinDir(): string | null {
  if (process.env.PG_BIN) return process.env.PG_BIN;
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'pg_ctl'))).sort((a, b) => Number(b) - Number(a));
    if (versions[0]) return join(root, versions[0], 'bin');
  }
  const which = spawnSync('sh', ['-c', 'command -v pg_ctl'], { encoding: 'utf8' });
  const path = which.stdout.trim();
  return which.status === 0 && path ? path.replace(/\/pg_ctl$/, '') : null;
}

/** Why no cluster can be started here, or null when one can. */
export function pgClusterUnavailable(): string | null {
  const bin = pgBinDir();
  if (!bin || !existsSync(join(bin, 'initdb'))) return 'no PostgreSQL server binaries (initdb, pg_ctl) on this machine';
  if (process.getuid?.() === 0 && postgresUser() === null) return 'running as root, and there is no postgres user to run PostgreSQL as';
  return null;
}

function postgresUser(): { uid: number; gid: number } | null {
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('postgres:'));
  const [, , uid, gid] = line?.split(':') ?? [];
  return uid && gid ? { uid: Number(uid), gid: Number(gid) } : null;
}

/** Runs a PostgreSQL binary (as postgres when we are root); rejects with its output when it fails or overruns. */
function run(bin: string, args: string[]): Promise<void> {
  const asRoot = process.getuid?.() === 0;
  const [cmd, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), PG_BOUNDS.commandMs);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`${bin} ${args.join(' ')} failed (${code ?? signal}):\n${out.slice(-4000)}`));
    });
  });
}

export async function startPgCluster(): Promise<PgCluster> {
  const why = pgClusterUnavailable();
  if (why) throw new Error(`cannot start a private PostgreSQL cluster: ${why}.\n${PG_TEST_HELP}`);
  const bin = pgBinDir()!;
  const dir = mkdtempSync(join(tmpdir(), 'gaffer-pg-'));
  const owner = process.getuid?.() === 0 ? postgresUser() : null;
  if (owner) chownSync(dir, owner.uid, owner.gid);
  const dataDir = join(dir, 'data');
  const port = await freePort();
  await run(join(bin, 'initdb'), ['-D', dataDir, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-sync', '--no-instructions']);
  const serverOptions = [
    `-p ${port}`,
    '-c listen_addresses=127.0.0.1',
    `-c unix_socket_directories=${dir}`,
    '-c fsync=off',
    '-c full_page_writes=off',
    '-c max_connections=200',
  ].join(' ');
  const pgCtl = join(bin, 'pg_ctl');
  let running = false;
  const start = async (): Promise<void> => {
    await run(pgCtl, ['-D', dataDir, '-l', join(dir, 'server.log'), '-w', '-t', String(PG_BOUNDS.pgCtlWaitS), '-o', serverOptions, 'start']);
    running = true;
  };
  const stop = async (mode: 'fast' | 'immediate' = 'fast'): Promise<void> => {
    await run(pgCtl, ['-D', dataDir, '-m', mode, '-w', '-t', String(PG_BOUNDS.pgCtlWaitS), 'stop']);
    running = false;
  };
  // Whatever happens to the test, no server outlives its process.
  const onExit = (): void => {
    if (!running) return;
    const args = ['-D', dataDir, '-m', 'immediate', '-w', 'stop'];
    if (process.getuid?.() === 0) spawnSync('runuser', ['-u', 'postgres', '--', pgCtl, ...args]);
    else spawnSync(pgCtl, args);
  };
  process.once('exit', onExit);
  await start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    dataDir,
    stop: () => stop('fast'),
    start,
    async destroy() {
      process.off('exit', onExit);
      if (running) await stop('immediate').catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
