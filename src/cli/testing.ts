// Helpers for tests that run the `gaffer` command as real processes on
// 127.0.0.1 (e2e.test.ts, multi.solo.test.ts): spawn, wait for a line, stop with
// escalating signals, poll the API in bounded loops. Every child started here
// is killed at the latest when the test file ends.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after } from 'node:test';
import { pino } from 'pino';
import type { GafferClient, JobWithAttempts } from '../client/client.ts';
import { Coordinator, type CoordinatorOptions } from '../coordinator/coordinator.ts';
import { Auth, type TokenConfig } from '../server/auth.ts';
import { buildHttpApp } from '../server/http.ts';
import { openSqliteStore, type SqliteStore } from '../store/sqlite/store.ts';
import { systemClock, systemRandom } from '../types/clock.ts';
import type { Worker as WorkerInfo } from '../types/model.ts';

const MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));

/** Bounds: every wait in these tests ends, one way or the other. */
export const BOUNDS = {
  startMs: 30_000,
  jobsMs: 60_000,
  pollIntervalMs: 25,
  /** After SIGTERM, how long a process has before the next, harsher signal. */
  stopGraceMs: 5_000,
  outputKeepChars: 256 * 1024,
} as const;

// ---- Processes ----

/** The environment without GAFFER_* variables, so the tests see only the flags they pass. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('GAFFER_')) env[k] = v;
  return { ...env, ...extra };
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface Proc {
  name: string;
  child: ChildProcess;
  /** Signals the process (its whole group when started with `group`). */
  signal(sig: NodeJS.Signals): void;
  stdout(): string;
  stderr(): string;
  /** Resolves when the process has exited (its stdio closed). */
  exited: Promise<Exit>;
  exit: Exit | null;
  /** Resolves with the first stdout line matching `re`; rejects if the process exits first or the bound passes. */
  waitLine(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
}

/** Every child this file started and that has not exited: killed at the latest when the file ends. */
const live = new Set<Proc>();

/**
 * `group`: the child leads a process group of its own, and signals go to the whole group (for
 * devstack, so that its worker processes go with it even when it is SIGKILLed).
 */
export function startProc(name: string, file: string, args: string[], env: NodeJS.ProcessEnv, group = false): Proc {
  const child = spawn(process.execPath, [file, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env, detached: group });
  let out = '';
  let err = '';
  const keep = (s: string): string => (s.length > BOUNDS.outputKeepChars ? s.slice(-BOUNDS.outputKeepChars) : s);
  const onLine = new Set<() => void>();
  child.stdout!.setEncoding('utf8').on('data', (c: string) => {
    out = keep(out + c);
    for (const f of [...onLine]) f();
  });
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (err = keep(err + c)));
  const proc: Proc = {
    name,
    child,
    signal(sig) {
      if (proc.exit || child.pid === undefined) return;
      try {
        if (group) process.kill(-child.pid, sig);
        else child.kill(sig);
      } catch {
        // gone already
      }
    },
    stdout: () => out,
    stderr: () => err,
    exit: null,
    exited: new Promise<Exit>((resolve) => {
      child.once('close', (code, signal) => {
        proc.exit = { code, signal };
        live.delete(proc);
        for (const f of [...onLine]) f();
        resolve(proc.exit);
      });
    }),
    waitLine(re, timeoutMs = BOUNDS.startMs) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          for (const line of out.split('\n')) {
            const m = re.exec(line);
            if (m) return done(() => resolve(m));
          }
          if (proc.exit) done(() => reject(new Error(`${name} exited (${JSON.stringify(proc.exit)}) before printing ${re}\n${tails(proc)}`)));
        };
        const timer = setTimeout(() => done(() => reject(new Error(`${name} printed no ${re} within ${timeoutMs} ms\n${tails(proc)}`))), timeoutMs);
        const done = (f: () => void): void => {
          clearTimeout(timer);
          onLine.delete(check);
          f();
        };
        onLine.add(check);
        check();
      });
    },
  };
  live.add(proc);
  return proc;
}

export const gaffer = (name: string, args: string[], env: Record<string, string> = {}, group = false): Proc => startProc(name, MAIN, args, cleanEnv(env), group);

export function tails(p: Proc): string {
  const t = (s: string): string => s.split('\n').slice(-15).join('\n');
  return `--- ${p.name} stdout (tail) ---\n${t(p.stdout())}\n--- ${p.name} stderr (tail) ---\n${t(p.stderr())}`;
}

/** Resolves with the exit, or rejects when the process is still running after `ms`. */
export async function exitWithin(p: Proc, ms: number): Promise<Exit> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${p.name} did not exit within ${ms} ms\n${tails(p)}`)), ms);
  });
  try {
    return await Promise.race([p.exited, bound]);
  } finally {
    clearTimeout(timer);
  }
}

/** SIGTERM (a worker drains), SIGTERM again (a worker gives up its attempts), then SIGKILL; each after a bounded wait. */
export async function stop(p: Proc): Promise<void> {
  for (const sig of ['SIGTERM', 'SIGTERM', 'SIGKILL'] as const) {
    if (p.exit) return;
    p.signal(sig);
    try {
      await exitWithin(p, BOUNDS.stopGraceMs);
      return;
    } catch {
      // still running: the next signal
    }
  }
}

export async function kill9(p: Proc): Promise<Exit> {
  p.signal('SIGKILL');
  return exitWithin(p, BOUNDS.stopGraceMs);
}

after(async () => {
  await Promise.all([...live].map((p) => stop(p)));
});
process.once('exit', () => {
  for (const p of live) p.signal('SIGKILL');
});

// ---- Polling the API ----

/** Polls `check` every `intervalMs` until it returns something, or rejects once `timeoutMs` has passed. */
export async function until<T>(
  what: string,
  check: () => Promise<T | undefined | null | false>,
  timeoutMs: number = BOUNDS.jobsMs,
  intervalMs: number = BOUNDS.pollIntervalMs,
): Promise<T> {
  const giveUpAt = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== null && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > giveUpAt) throw new Error(`${what}: not within ${timeoutMs} ms${last ? ` (last error: ${String(last)})` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export async function connectedWorkers(client: GafferClient, names: string[], timeoutMs: number = BOUNDS.startMs): Promise<WorkerInfo[]> {
  return until(`workers ${names.join(', ')} connected`, async () => {
    const ws = await client.workers();
    const found = names.map((n) => ws.find((w) => w.name === n && w.connected));
    return found.every((w) => w !== undefined) ? (found as WorkerInfo[]) : undefined;
  }, timeoutMs, 100);
}

export interface QueueStats {
  queue: string;
  counts: Record<string, number>;
}

export async function countsOf(client: GafferClient, queue: string): Promise<Record<string, number>> {
  const stats = (await client.queues()) as { queues: QueueStats[] };
  return stats.queues.find((q) => q.queue === queue)?.counts ?? {};
}

export const TERMINAL = ['succeeded', 'failed', 'cancelled', 'expired'];
export const sum = (counts: Record<string, number>, states?: string[]): number =>
  Object.entries(counts).reduce((acc, [s, n]) => acc + (states === undefined || states.includes(s) ? n : 0), 0);

/** Every job of the queue has ended; returns its counts per state. */
export function allEnded(
  client: GafferClient,
  queue: string,
  total: number,
  timeoutMs: number = BOUNDS.jobsMs,
  intervalMs: number = BOUNDS.pollIntervalMs,
): Promise<Record<string, number>> {
  return until(`${total} jobs of ${queue} ending`, async () => {
    const counts = await countsOf(client, queue);
    return sum(counts, TERMINAL) >= total ? counts : undefined;
  }, timeoutMs, intervalMs);
}

/** Gets jobs with their attempts, a few requests at a time. */
export async function getAll(client: GafferClient, ids: string[]): Promise<JobWithAttempts[]> {
  const out: JobWithAttempts[] = new Array(ids.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < ids.length) {
        const i = next++;
        out[i] = await client.get(ids[i]!);
      }
    }),
  );
  return out;
}

// ---- Ports ----

function listenOnce(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(port, '127.0.0.1', () => {
      const got = (srv.address() as AddressInfo).port;
      srv.close(() => resolve(got));
    });
  });
}

/** A port free now (the OS picks it); a restarted coordinator can come back on it. */
export const freePort = (): Promise<number> => listenOnce(0);

/**
 * Runs a Node script to its end with piped output: SIGTERM once `boundMs` has
 * passed (so that it stops what it started), SIGKILL 15 s later.
 */
export function runScript(
  file: string,
  args: string[],
  boundMs: number,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [file, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const term = setTimeout(() => child.kill('SIGTERM'), boundMs);
    const kill = setTimeout(() => child.kill('SIGKILL'), boundMs + 15_000);
    child.once('close', (code, signal) => {
      clearTimeout(term);
      clearTimeout(kill);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

export interface HttpCoordinator {
  store: SqliteStore;
  coordinator: Coordinator;
  /** http://127.0.0.1:<port> */
  url: string;
  close(): Promise<void>;
}

/** A coordinator on a SQLite file in a temp dir, on the system clock, behind the HTTP API on 127.0.0.1: for tests of the client commands. */
export async function startHttpCoordinator(tokens: TokenConfig[], options: Pick<CoordinatorOptions, 'pipelines' | 'queues'> = {}): Promise<HttpCoordinator> {
  const dir = mkdtempSync(join(tmpdir(), 'gaffer-cli-http-'));
  const store = openSqliteStore({ path: join(dir, 'gaffer.db'), clock: systemClock, random: systemRandom() });
  const coordinator = new Coordinator({ store, clock: systemClock, ...options });
  coordinator.start();
  const app = await buildHttpApp({ coordinator, auth: new Auth(tokens), logger: pino({ level: 'silent' }) });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  return {
    store,
    coordinator,
    url,
    close: async () => {
      await app.close();
      await coordinator.stop();
      store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
