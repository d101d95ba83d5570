// A throwaway PostgreSQL cluster: initdb into a temp dir, pg_ctl start on a
// free port of 127.0.0.1 (and a unix socket in that dir), trust
// authentication, as the postgres user when this process runs as root
// (PostgreSQL refuses to run as root). Used by the store's tests, the tests
// that restart the database under running coordinators, and the benchmarks;
// each chooses its server settings. Nothing of it outlives this process: an
// exit hook stops the server and removes its files (SIGINT and SIGTERM exit
// through it too).
import { spawn, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Bounds on the cluster's commands (defaults; a caller may give its own). */
export const CLUSTER_DEFAULTS = {
  /** initdb, and pg_ctl start/stop with -w, each get this long. */
  commandMs: 120_000,
  /** pg_ctl's own wait (-t), in seconds. */
  pgCtlWaitS: 60,
} as const;

export interface ClusterOptions {
  /** Server settings, each passed as -c name=value (listen_addresses, port and the socket dir are set already). */
  settings?: Record<string, string | number>;
  /** initdb --no-sync: faster, for data that need not survive a power cut. */
  initdbNoSync?: boolean;
  /** The temp dir's name prefix. */
  tmpPrefix?: string;
  commandMs?: number;
  pgCtlWaitS?: number;
}

export interface Cluster {
  port: number;
  /** The temp dir: data dir, server log, unix socket. */
  dir: string;
  dataDir: string;
  /** postgres://postgres@127.0.0.1:PORT/postgres */
  tcpUrl: string;
  /** The same over the unix socket in `dir` (cheaper round trips). */
  socketUrl: string;
  /** Starts the server again (same port and data); resolves once it accepts connections. */
  start(): Promise<void>;
  /** Stops the server; resolves once it is down. 'fast' cuts connections as a real restart does. */
  stop(mode?: 'fast' | 'immediate'): Promise<void>;
  /** Stops it (immediate) and removes its files. */
  destroy(): Promise<void>;
}

/** The directory of initdb and pg_ctl: $PG_BIN, pg_config --bindir, the newest /usr/lib/postgresql/N/bin, or the PATH. */
export function pgBinDir(): string | null {
  const has = (dir: string): boolean => existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'pg_ctl'));
  if (process.env.PG_BIN && has(process.env.PG_BIN)) return process.env.PG_BIN;
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

/** The postgres user's ids when this process runs as root (its commands then run as that user); null when not root. */
function postgresOwner(): { uid: number; gid: number } | null {
  if (process.getuid?.() !== 0) return null;
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('postgres:'));
  const [, , uid, gid] = line?.split(':') ?? [];
  if (!uid || !gid) throw new Error('running as root, and there is no postgres user to run PostgreSQL as');
  return { uid: Number(uid), gid: Number(gid) };
}

/** Why no cluster can be started here, or null when one can. */
export function clusterUnavailable(): string | null {
  if (pgBinDir() === null) return 'no PostgreSQL server binaries (initdb, pg_ctl) on this machine';
  try {
    postgresOwner();
  } catch (err) {
    return (err as Error).message;
  }
  return null;
}

/** A TCP port on 127.0.0.1 that nothing listens on right now (the bench's servers use it too). */
export function freePort(): Promise<number> {
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

let signalsHooked = false;

/** SIGINT and SIGTERM end the process through process.exit, so that the exit hooks stop every cluster. */
function exitOnSignals(): void {
  if (signalsHooked) return;
  signalsHooked = true;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => process.exit(signal === 'SIGINT' ? 130 : 143));
  }
}

export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const why = clusterUnavailable();
  if (why !== null) throw new Error(why);
  const bin = pgBinDir()!;
  const owner = postgresOwner();
  const commandMs = options.commandMs ?? CLUSTER_DEFAULTS.commandMs;
  const waitS = String(options.pgCtlWaitS ?? CLUSTER_DEFAULTS.pgCtlWaitS);
  const argv = (cmd: string, args: string[]): [string, string[]] => (owner ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args]);
  const run = (cmd: string, args: string[]): Promise<void> =>
    new Promise((resolve, reject) => {
      const [file, list] = argv(cmd, args);
      const child = spawn(file, list, { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      child.stderr.on('data', (c: Buffer) => (out += c.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), commandMs);
      child.once('error', reject);
      child.once('close', (code, signal) => {
        clearTimeout(timer);
        if (code === 0) resolve();
        else reject(new Error(`${cmd} ${args[0] ?? ''} failed (${code ?? signal}):\n${out.slice(-4000)}`));
      });
    });
  const dir = mkdtempSync(join(tmpdir(), options.tmpPrefix ?? 'gaffer-pg-'));
  if (owner) chownSync(dir, owner.uid, owner.gid);
  const dataDir = join(dir, 'data');
  const pgCtl = join(bin, 'pg_ctl');
  let running = false;
  const stopNow = (): void => {
    if (!running) return;
    const [file, list] = argv(pgCtl, ['stop', '-D', dataDir, '-m', 'immediate', '-w', '-t', '30']);
    spawnSync(file, list, { stdio: 'ignore', timeout: commandMs });
    running = false;
  };
  const onExit = (): void => {
    stopNow();
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', onExit);
  exitOnSignals();
  const port = await freePort();
  const settings = [
    `-p ${port}`,
    '-c listen_addresses=127.0.0.1',
    `-c unix_socket_directories=${dir}`,
    ...Object.entries(options.settings ?? {}).map(([k, v]) => `-c ${k}=${v}`),
  ].join(' ');
  const start = async (): Promise<void> => {
    running = true;
    await run(pgCtl, ['start', '-D', dataDir, '-l', join(dir, 'server.log'), '-w', '-t', waitS, '-o', settings]);
  };
  const stop = async (mode: 'fast' | 'immediate' = 'fast'): Promise<void> => {
    await run(pgCtl, ['stop', '-D', dataDir, '-m', mode, '-w', '-t', waitS]);
    running = false;
  };
  try {
    await run(join(bin, 'initdb'), [
      '-D', dataDir, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-instructions', ...(options.initdbNoSync ? ['--no-sync'] : []),
    ]);
    await start();
  } catch (err) {
    onExit();
    process.off('exit', onExit);
    throw err;
  }
  return {
    port,
    dir,
    dataDir,
    tcpUrl: `postgres://postgres@127.0.0.1:${port}/postgres`,
    socketUrl: `postgres://postgres@/postgres?host=${encodeURIComponent(dir)}&port=${port}`,
    start,
    stop,
    async destroy() {
      process.off('exit', onExit);
      if (running) await stop('immediate').catch(() => stopNow());
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
