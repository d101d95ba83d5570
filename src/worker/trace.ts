// Resource traces: an attempt's CPU time and resident memory over time, sent
// with its result for trace verification (docs/worker-protocol.md#complete).
//
// The exec runner samples its child process from Linux /proc
// (docs/exec-runner.md#resource-trace):
// - CPU: utime + stime of the child (/proc/<pid>/stat fields 14 and 15), plus
//   cutime + cstime (fields 16 and 17: children it has reaped, so that
//   `sh -c "compute"` counts its finished `compute`), plus the same for each
//   live descendant found through /proc/<pid>/task/<tid>/children.
// - Memory: VmRSS of /proc/<pid>/status, summed over the same processes.
// The walk is bounded (TREE_MAX_PROCESSES, TASKS_MAX_PER_PROCESS) and every
// read is async, so a sample costs the event loop next to nothing.
//
// Samples are taken every intervalMs (EXEC_DEFAULTS.traceIntervalMs). When a
// run reaches LIMITS.traceSamplesMax samples, every second sample is dropped
// and the interval doubles, so a trace of any run length stays bounded and
// evenly spaced. Anything that goes wrong (not Linux, no /proc, the process
// already gone) gives fewer samples or a null trace, never an error.
import { readFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { EXEC_DEFAULTS, LIMITS } from '../types/limits.ts';
import type { Trace, TraceSample } from '../types/model.ts';

/**
 * Clock ticks per second of the times in /proc/<pid>/stat (USER_HZ,
 * `getconf CLK_TCK`). The kernel reports these times in USER_HZ whatever its
 * internal HZ, and USER_HZ is 100 on every mainstream Linux architecture
 * (x86, arm, arm64, riscv, ppc, s390). Node offers no sysconf(), and running
 * getconf per worker for a constant is not worth a process, so it is fixed here.
 */
export const CLOCK_TICKS_PER_SECOND = 100;

/** Most processes (the child and its descendants) one sample reads. */
export const TREE_MAX_PROCESSES = 64;
/** Most threads of one process whose children lists one sample reads. */
export const TASKS_MAX_PER_PROCESS = 64;

/** Whether this platform can be sampled at all. */
export const traceSupported = (): boolean => process.platform === 'linux';

// ---- The bounded buffer (pure) ----

/**
 * Samples of one run, at most `maxSamples`. A push into a full buffer first
 * drops every second sample (keeping the first) and doubles the interval:
 * memory stays bounded and the kept samples stay evenly spaced.
 */
export class TraceBuffer {
  private readonly max: number;
  private interval: number;
  private readonly samples: TraceSample[] = [];

  constructor(intervalMs: number, maxSamples: number = LIMITS.traceSamplesMax) {
    if (!(maxSamples >= 2)) throw new RangeError('a trace buffer holds at least 2 samples');
    this.interval = intervalMs;
    this.max = Math.floor(maxSamples);
  }

  /** The interval between samples now: the first one, doubled at each thinning. */
  get intervalMs(): number {
    return this.interval;
  }

  get length(): number {
    return this.samples.length;
  }

  get last(): TraceSample | undefined {
    return this.samples[this.samples.length - 1];
  }

  push(sample: TraceSample): void {
    if (this.samples.length >= this.max) {
      let kept = 0;
      for (let i = 0; i < this.samples.length; i += 2) this.samples[kept++] = this.samples[i]!;
      this.samples.length = kept;
      this.interval *= 2;
    }
    this.samples.push(sample);
  }

  /** A copy, as sent: `{ intervalMs, samples }`. */
  toTrace(): Trace {
    return { intervalMs: this.interval, samples: this.samples.map((s) => ({ ...s })) };
  }
}

// ---- Reading /proc ----

export interface ProcStat {
  /** Process state: R, S, D, Z (zombie: exited, not yet reaped), ... */
  state: string;
  /** utime + stime, in clock ticks. */
  selfTicks: number;
  /** cutime + cstime: reaped children, in clock ticks. */
  childTicks: number;
  /** Start time since boot, in clock ticks: tells a process from a later one given the same pid. */
  startTicks: number;
}

/** Parses /proc/<pid>/stat; null when it does not look like one. */
export function parseStat(text: string): ProcStat | null {
  // Field 2 (comm) is in parentheses and may itself hold spaces and parentheses: split after the last ')'.
  const close = text.lastIndexOf(')');
  if (close < 0) return null;
  const f = text.slice(close + 2).trim().split(' ');
  // f[0] is field 3 (state); field n is f[n - 3].
  const num = (n: number): number => Number(f[n - 3]);
  const stat = { state: f[0] ?? '', selfTicks: num(14) + num(15), childTicks: num(16) + num(17), startTicks: num(22) };
  if (!Number.isFinite(stat.selfTicks) || !Number.isFinite(stat.childTicks) || !Number.isFinite(stat.startTicks)) return null;
  return stat;
}

/** VmRSS in kB from /proc/<pid>/status; null when absent (a process that is exiting, or has exited, has no memory left). */
export function parseRssKb(text: string): number | null {
  const m = /^VmRSS:\s*(\d+)\s*kB/m.exec(text);
  return m ? Number(m[1]) : null;
}

/** Pids in a children file ("12 15 "), or none. */
function parsePids(text: string): number[] {
  return text.split(/\s+/).filter((s) => /^\d+$/.test(s)).map(Number);
}

async function readText(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return null;
  }
}

/** The live children of a process, from the children list of each of its threads (bounded). */
async function childrenOf(pid: number): Promise<number[]> {
  let tids: string[];
  try {
    tids = (await readdir(`/proc/${pid}/task`)).slice(0, TASKS_MAX_PER_PROCESS);
  } catch {
    return [];
  }
  const lists = await Promise.all(tids.map((tid) => readText(`/proc/${pid}/task/${tid}/children`)));
  return lists.flatMap((t) => (t === null ? [] : parsePids(t)));
}

/** One reading of a process tree. */
export interface TreeUsage {
  /** CPU time of the root and its descendants, live and reaped. */
  cpuMs: number;
  /** Resident memory of the root and its live descendants. */
  rssKb: number;
  /** The root's state and start time. */
  root: ProcStat;
  /** The root has no memory left: it is exiting or has exited. */
  rootExiting: boolean;
}

/**
 * Reads the CPU time and resident memory of `pid` and its live descendants
 * (breadth first, at most TREE_MAX_PROCESSES). Null when the root cannot be
 * read (gone, or no /proc). A descendant that vanishes mid-walk is skipped.
 */
export async function readTree(pid: number): Promise<TreeUsage | null> {
  let root: ProcStat | null = null;
  let rootExiting = false;
  let ticks = 0;
  let rssKb = 0;
  const seen = new Set<number>();
  let level = [pid];
  while (level.length > 0 && seen.size < TREE_MAX_PROCESSES) {
    level = level.filter((p) => !seen.has(p)).slice(0, TREE_MAX_PROCESSES - seen.size);
    for (const p of level) seen.add(p);
    const read = await Promise.all(
      level.map(async (p) => {
        const [stat, status] = await Promise.all([readText(`/proc/${p}/stat`), readText(`/proc/${p}/status`)]);
        const s = stat === null ? null : parseStat(stat);
        return { p, s, rss: status === null ? null : parseRssKb(status) };
      }),
    );
    const next: number[] = [];
    for (const { p, s, rss } of read) {
      if (!s) continue;
      if (p === pid) {
        root = s;
        rootExiting = rss === null;
      }
      ticks += s.selfTicks + s.childTicks;
      rssKb += rss ?? 0;
    }
    if (!root) return null;
    if (seen.size >= TREE_MAX_PROCESSES) break;
    const kids = await Promise.all(read.filter((r) => r.s).map((r) => childrenOf(r.p)));
    for (const k of kids) next.push(...k);
    level = next;
  }
  if (!root) return null;
  return { cpuMs: (ticks * 1000) / CLOCK_TICKS_PER_SECOND, rssKb, root, rootExiting };
}

// ---- The sampler ----

/** Timers, injectable for tests. */
export interface TraceTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface TraceSamplerOptions {
  /** Time between samples at first; EXEC_DEFAULTS.traceIntervalMs. */
  intervalMs?: number;
  /** LIMITS.traceSamplesMax. */
  maxSamples?: number;
  /** A monotonic clock in ms; performance.now(). */
  now?: () => number;
  timers?: TraceTimers;
  /** Reads the process tree; readTree. */
  read?: (pid: number) => Promise<TreeUsage | null>;
}

const REAL_TIMERS: TraceTimers = {
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

/**
 * Samples one process (and its descendants) from start() until stop(). Never
 * throws: a failed read ends the sampling and keeps what was read before.
 */
export class TraceSampler {
  private readonly pid: number;
  private readonly buffer: TraceBuffer;
  private readonly now: () => number;
  private readonly timers: TraceTimers;
  private readonly read: (pid: number) => Promise<TreeUsage | null>;
  private t0 = 0;
  private timer: unknown = null;
  private inFlight: Promise<void> | null = null;
  /** Start time of the process first read: a later process given the same pid is not it. */
  private startTicks: number | null = null;
  /** The process is gone (or never was readable): no more reads. */
  private gone = false;
  private stopped = false;
  private stopping: Promise<Trace | null> | null = null;
  private started = false;

  constructor(pid: number, options: TraceSamplerOptions = {}) {
    this.pid = pid;
    this.buffer = new TraceBuffer(options.intervalMs ?? EXEC_DEFAULTS.traceIntervalMs, options.maxSamples ?? LIMITS.traceSamplesMax);
    this.now = options.now ?? (() => performance.now());
    this.timers = options.timers ?? REAL_TIMERS;
    this.read = options.read ?? readTree;
  }

  /** Takes the first sample now, then one every interval. */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.t0 = this.now();
    if (!traceSupportedFor(this.read)) {
      this.gone = true;
      return;
    }
    void this.tick();
  }

  /** One sample now, beside the timed ones (e.g. as the child closes its output); shares a read in flight. */
  sample(): Promise<void> {
    if (!this.started || this.stopped || this.gone) return this.inFlight ?? Promise.resolve();
    if (this.inFlight) return this.inFlight;
    const p = this.readOnce().finally(() => {
      if (this.inFlight === p) this.inFlight = null;
    });
    this.inFlight = p;
    return p;
  }

  /**
   * Stops sampling after one last reading (if the process can still be read:
   * once it has been reaped it cannot, and the trace ends at the last sample
   * taken). Null when no sample was ever read.
   */
  stop(): Promise<Trace | null> {
    this.stopping ??= (async () => {
      if (this.timer !== null) this.timers.clearTimeout(this.timer);
      this.timer = null;
      await this.sample();
      this.stopped = true;
      return this.trace();
    })();
    return this.stopping;
  }

  /** The trace so far, or null. */
  trace(): Trace | null {
    return this.buffer.length > 0 ? this.buffer.toTrace() : null;
  }

  private async tick(): Promise<void> {
    this.timer = null;
    await this.sample();
    if (this.stopped || this.gone) return;
    this.timer = this.timers.setTimeout(() => void this.tick(), this.buffer.intervalMs);
  }

  /**
   * The last chance to read a child that is exiting (its output just closed):
   * an exited child stays readable, as a zombie, only until it is reaped, which
   * may happen before an async read runs. So this reads its stat at once, in
   * one small synchronous read; a zombie has no descendants left in its tree
   * (they were re-parented as it exited), so its own times are the whole
   * reading. A child still running gets an ordinary (async) sample instead.
   */
  sampleExiting(): void {
    if (!this.started || this.stopped || this.gone || this.read !== readTree || this.startTicks === null) {
      void this.sample();
      return;
    }
    let stat: ProcStat | null;
    try {
      stat = parseStat(readFileSync(`/proc/${this.pid}/stat`, 'utf8'));
    } catch {
      stat = null;
    }
    if (stat && (stat.state === 'Z' || stat.state === 'X')) {
      this.accept({ cpuMs: ((stat.selfTicks + stat.childTicks) * 1000) / CLOCK_TICKS_PER_SECOND, rssKb: 0, root: stat, rootExiting: true });
    } else {
      void this.sample();
    }
  }

  private async readOnce(): Promise<void> {
    let u: TreeUsage | null;
    try {
      u = await this.read(this.pid);
    } catch {
      u = null;
    }
    if (this.stopped || this.gone) return;
    this.accept(u);
  }

  private accept(u: TreeUsage | null): void {
    if (!u || (this.startTicks !== null && u.root.startTicks !== this.startTicks)) {
      this.gone = true;
      return;
    }
    this.startTicks ??= u.root.startTicks;
    const last = this.buffer.last;
    const zombie = u.root.state === 'Z' || u.root.state === 'X';
    const exiting = zombie || u.rootExiting;
    const tMs = Math.max(last?.tMs ?? 0, round(this.now() - this.t0));
    this.buffer.push({
      tMs,
      // Cumulative: a descendant reaped by no one in the tree takes its CPU time with it; the sum never goes back.
      cpuMs: Math.max(last?.cpuMs ?? 0, round(u.cpuMs)),
      // A child exiting (or exited, not yet reaped) has no memory left; its last resident size is the better reading.
      rssKb: exiting && last ? last.rssKb : u.rssKb,
    });
    if (zombie) this.gone = true;
  }
}

/** A custom reader may sample anywhere; the /proc reader only on Linux. */
function traceSupportedFor(read: (pid: number) => Promise<TreeUsage | null>): boolean {
  return read !== readTree || traceSupported();
}

const round = (n: number): number => Math.round(n * 1000) / 1000;

/** Starts sampling `pid` at once. */
export function sampleProcess(pid: number, options: TraceSamplerOptions = {}): TraceSampler {
  const s = new TraceSampler(pid, options);
  s.start();
  return s;
}

// ---- Traces a handler gives ----

/**
 * Checks a trace a handler gives (ctx.setTrace) and copies its known fields.
 * A trace with more than LIMITS.traceSamplesMax samples is thinned the way the
 * sampler thins its own (every second sample dropped, the interval doubled).
 * Throws a TypeError for anything the coordinator would refuse.
 */
export function normalizeTrace(value: unknown): Trace {
  const t = value as { intervalMs?: unknown; samples?: unknown } | null;
  if (typeof t !== 'object' || t === null || Array.isArray(t)) throw new TypeError('a trace is an object { intervalMs, samples }');
  if (!isNonNegative(t.intervalMs)) throw new TypeError('trace.intervalMs is a finite number >= 0');
  if (!Array.isArray(t.samples)) throw new TypeError('trace.samples is an array');
  const samples: TraceSample[] = [];
  for (const [i, s] of (t.samples as unknown[]).entries()) {
    const o = s as { tMs?: unknown; cpuMs?: unknown; rssKb?: unknown } | null;
    if (typeof o !== 'object' || o === null || !isNonNegative(o.tMs) || !isNonNegative(o.cpuMs) || !isNonNegative(o.rssKb)) {
      throw new TypeError(`trace.samples[${i}] is { tMs, cpuMs, rssKb }, each a finite number >= 0`);
    }
    if (i > 0 && o.tMs < samples[i - 1]!.tMs) throw new TypeError('trace.samples must be in time order (ascending tMs)');
    samples.push({ tMs: o.tMs, cpuMs: o.cpuMs, rssKb: o.rssKb });
  }
  let intervalMs = t.intervalMs;
  let kept = samples;
  while (kept.length > LIMITS.traceSamplesMax) {
    kept = kept.filter((_, i) => i % 2 === 0);
    intervalMs *= 2;
  }
  return { intervalMs, samples: kept };
}

const isNonNegative = (n: unknown): n is number => typeof n === 'number' && Number.isFinite(n) && n >= 0;
