// A coordinator as a child process (`gaffer serve`), and what Linux says about
// a process in /proc: CPU time, resident memory, open files, limits.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { freePort, onExit, sleep } from './util.ts';

const GAFFER_MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

export const PROC_BOUNDS = {
  /** A coordinator that does not answer /readyz within this long failed to start. */
  startMs: 120_000,
  /** /readyz is polled this often while a coordinator starts. */
  readyPollMs: 5,
  /** After SIGTERM, a coordinator has this long to exit before SIGKILL. */
  stopGraceMs: 15_000,
  /** The tail of a child's output kept for error messages. */
  outputKeepChars: 64 * 1024,
} as const;

export interface Serve {
  child: ChildProcess;
  pid: number;
  port: number;
  /** http://127.0.0.1:PORT */
  baseUrl: string;
  /** ws://127.0.0.1:PORT/v1/worker */
  workerUrl: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** The tail of its stdout and stderr. */
  output(): string;
  /** SIGTERM, then SIGKILL after the grace; resolves with how long the exit took. */
  stop(): Promise<number>;
}

/** The environment without GAFFER_* variables: the coordinator sees only the flags given. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('GAFFER_')) env[k] = v;
  return env;
}

/**
 * Starts `gaffer serve` on a free port of 127.0.0.1 with no tokens (a loopback
 * development setup, which accepts any request), logging warnings only.
 * `dbArgs`: `--db FILE`, or `--db URL --pg-schema NAME`.
 */
export async function startServe(dbArgs: readonly string[]): Promise<Serve> {
  const port = await freePort();
  const child = spawn(process.execPath, [GAFFER_MAIN, 'serve', '--host', '127.0.0.1', '--port', String(port), ...dbArgs, '--log-level', 'warn'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: cleanEnv(),
  });
  let out = '';
  const keep = (c: Buffer): void => {
    out = (out + c.toString()).slice(-PROC_BOUNDS.outputKeepChars);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  let done = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('close', (code, signal) => {
      done = true;
      resolve({ code, signal });
    }),
  );
  const removeHook = onExit(() => {
    if (!done) child.kill('SIGKILL');
  });
  void exited.then(removeHook);
  const baseUrl = `http://127.0.0.1:${port}`;
  return {
    child,
    pid: child.pid!,
    port,
    baseUrl,
    workerUrl: `ws://127.0.0.1:${port}/v1/worker`,
    exited,
    output: () => out,
    async stop() {
      const t0 = performance.now();
      if (done) return 0;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), PROC_BOUNDS.stopGraceMs);
      await exited;
      clearTimeout(timer);
      return performance.now() - t0;
    },
  };
}

/** Polls /readyz until it answers 200; rejects if the coordinator exits or the bound passes. */
export async function waitReady(serve: Serve, boundMs: number = PROC_BOUNDS.startMs): Promise<void> {
  const t0 = performance.now();
  let exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  void serve.exited.then((e) => (exit = e));
  for (;;) {
    if (exit !== null) throw new Error(`the coordinator exited (${JSON.stringify(exit)}) before it was ready:\n${serve.output().slice(-4000)}`);
    try {
      const res = await fetch(`${serve.baseUrl}/readyz`);
      await res.arrayBuffer();
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    if (performance.now() - t0 > boundMs) throw new Error(`the coordinator was not ready within ${boundMs} ms:\n${serve.output().slice(-4000)}`);
    await sleep(PROC_BOUNDS.readyPollMs);
  }
}

let clockTicks: number | null = null;

/** Clock ticks per second (the unit of CPU times in /proc/PID/stat). */
function ticksPerSecond(): number {
  if (clockTicks === null) {
    const out = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
    const n = Number(out.stdout?.trim());
    clockTicks = out.status === 0 && n > 0 ? n : 100;
  }
  return clockTicks;
}

/** User plus system CPU time the process has used, in ms. */
export function cpuTimeMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name (0-based: 11, 12).
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks / ticksPerSecond()) * 1000;
}

/** Resident memory now, and its peak so far, in MiB. */
export function memoryMiB(pid: number): { rssMiB: number; peakMiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssMiB: kb('VmRSS') / 1024, peakMiB: kb('VmHWM') / 1024 };
}

export function openFiles(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** The soft and hard limits on open files of a process ("unlimited" as Infinity). */
export function fileLimit(pid: number | 'self'): { soft: number; hard: number } {
  const line = readFileSync(`/proc/${pid}/limits`, 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
  const [soft, hard] = (line ?? '').replace('Max open files', '').trim().split(/\s+/);
  const n = (v: string | undefined): number => (v === 'unlimited' ? Infinity : Number(v));
  return { soft: n(soft), hard: n(hard) };
}

/** What a process used over a window: CPU as a share of one core, and its memory, sampled. */
export interface Usage {
  windowMs: number;
  cpuMs: number;
  /** CPU time over wall time, in percent of one core (200% = both cores of two). */
  cpuPercent: number;
  rssMeanMiB: number;
  rssMaxMiB: number;
}

/** Samples a process's memory every `intervalMs` from now until `end()`. */
export function watch(pid: number, intervalMs = 250): { end(): Usage } {
  const t0 = performance.now();
  const cpu0 = cpuTimeMs(pid);
  const samples: number[] = [memoryMiB(pid).rssMiB];
  const timer = setInterval(() => {
    try {
      samples.push(memoryMiB(pid).rssMiB);
    } catch {
      // the process is gone; end() says so
    }
  }, intervalMs);
  return {
    end() {
      clearInterval(timer);
      samples.push(memoryMiB(pid).rssMiB);
      const windowMs = performance.now() - t0;
      const cpuMs = cpuTimeMs(pid) - cpu0;
      return {
        windowMs,
        cpuMs,
        cpuPercent: (cpuMs / windowMs) * 100,
        rssMeanMiB: samples.reduce((a, b) => a + b, 0) / samples.length,
        rssMaxMiB: Math.max(...samples),
      };
    },
  };
}
