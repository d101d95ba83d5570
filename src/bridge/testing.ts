// A throwaway RabbitMQ broker for the bridge's tests: Debian's rabbitmq-server
// (no npm package ships one), run as the current user on private ports (AMQP,
// Erlang distribution, its own epmd) with its data, logs, config and Erlang
// cookie in a fresh directory, stopped and removed at the end. It can be
// stopped and started again on the same data (a broker restart).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqp from 'amqplib';
import { freePort } from '../cli/testing.ts';

export const RABBIT_BOUNDS = {
  /** A loaded machine takes tens of seconds to boot a broker. */
  startMs: 120_000,
  stopMs: 60_000,
  probeIntervalMs: 250,
} as const;

export const RABBIT_HELP =
  'The AMQP bridge tests need RabbitMQ, which no npm package ships. Install it (Debian: apt-get update && apt-get install -y rabbitmq-server), ' +
  'then stop the service it starts (service rabbitmq-server stop): the tests start brokers of their own.';

/** The rabbitmq-server script that runs the broker as the calling user (Debian's /usr/sbin one switches to the rabbitmq user). */
export function rabbitServerBin(): string | null {
  const lib = '/usr/lib/rabbitmq/lib';
  if (existsSync(lib)) {
    for (const dir of readdirSync(lib).filter((d) => d.startsWith('rabbitmq_server-')).sort().reverse()) {
      const bin = join(lib, dir, 'sbin', 'rabbitmq-server');
      if (existsSync(bin)) return bin;
    }
  }
  const which = spawnSync('sh', ['-c', 'command -v rabbitmq-server'], { encoding: 'utf8' });
  return which.status === 0 && which.stdout.trim() !== '' ? which.stdout.trim() : null;
}

export interface Rabbit {
  url: string;
  port: number;
  start(): Promise<void>;
  /** A clean shutdown (SIGTERM), as a service stop does. */
  stop(): Promise<void>;
  /** Stops it and removes its directory. */
  destroy(): Promise<void>;
  log(): string;
}

export async function startRabbit(): Promise<Rabbit> {
  const bin = rabbitServerBin();
  if (bin === null) throw new Error(`rabbitmq-server was not found. ${RABBIT_HELP}`);
  const dir = mkdtempSync(join(tmpdir(), 'gaffer-rabbit-'));
  const [port, distPort, epmdPort] = [await freePort(), await freePort(), await freePort()];
  mkdirSync(join(dir, 'home'));
  writeFileSync(join(dir, 'rabbitmq.conf'), `listeners.tcp.default = 127.0.0.1:${port}\nloopback_users = none\n`);
  writeFileSync(join(dir, 'enabled_plugins'), '[].\n');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: join(dir, 'home'),
    RABBITMQ_NODENAME: `gaffer${process.pid}x${port}@localhost`,
    RABBITMQ_NODE_PORT: String(port),
    RABBITMQ_DIST_PORT: String(distPort),
    ERL_EPMD_PORT: String(epmdPort),
    RABBITMQ_MNESIA_BASE: join(dir, 'mnesia'),
    RABBITMQ_LOG_BASE: join(dir, 'log'),
    RABBITMQ_CONFIG_FILE: join(dir, 'rabbitmq.conf'),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'enabled_plugins'),
    RABBITMQ_PID_FILE: join(dir, 'rabbit.pid'),
  };
  const url = `amqp://guest:guest@127.0.0.1:${port}`;
  let child: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();
  let out = '';
  const kill = (sig: NodeJS.Signals): void => {
    if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(-child.pid, sig);
      } catch {
        // already gone
      }
    }
  };
  const onExit = (): void => kill('SIGKILL');
  process.once('exit', onExit);

  const rabbit: Rabbit = {
    url,
    port,
    log: () => out.slice(-4000),
    async start() {
      child = spawn(bin, [], { cwd: dir, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
      child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
      const proc = child;
      exited = new Promise((resolve) => proc.once('exit', () => resolve()));
      const giveUpAt = Date.now() + RABBIT_BOUNDS.startMs;
      for (;;) {
        if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`rabbitmq-server exited while starting:\n${rabbit.log()}`);
        try {
          const conn = await amqp.connect(url);
          await conn.close();
          return;
        } catch {
          if (Date.now() > giveUpAt) throw new Error(`rabbitmq-server did not accept AMQP connections within ${RABBIT_BOUNDS.startMs} ms:\n${rabbit.log()}`);
          await new Promise((r) => setTimeout(r, RABBIT_BOUNDS.probeIntervalMs));
        }
      }
    },
    async stop() {
      kill('SIGTERM');
      const timer = setTimeout(() => kill('SIGKILL'), RABBIT_BOUNDS.stopMs);
      await exited;
      clearTimeout(timer);
    },
    async destroy() {
      await rabbit.stop();
      process.removeListener('exit', onExit);
      spawnSync('epmd', ['-port', String(epmdPort), '-kill'], { stdio: 'ignore', env });
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await rabbit.start();
  } catch (err) {
    await rabbit.destroy();
    throw err;
  }
  return rabbit;
}

/** The broker's log file, for a failing test's message. */
export function rabbitLogOf(dir: string): string {
  try {
    return readFileSync(dir, 'utf8').slice(-4000);
  } catch {
    return '';
  }
}
