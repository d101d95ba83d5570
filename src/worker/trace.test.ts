// Resource traces: the bounded buffer and the sampler with injected time and
// readings (no real time), then real child processes read from Linux /proc.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { systemClock, systemRandom } from '../types/clock.ts';
import { idFactory } from '../types/ids.ts';
import { EXEC_DEFAULTS, LIMITS } from '../types/limits.ts';
import type { Assignment, Trace } from '../types/model.ts';
import { runExec, type ExecOptions } from './exec.ts';
import { normalizeTrace, parseRssKb, parseStat, readTree, sampleProcess, TraceBuffer, TraceSampler, type TraceTimers, type TreeUsage } from './trace.ts';

const T = { timeout: 30_000 };
const linux = process.platform === 'linux';

/** Checks what the coordinator checks, and that the samples are evenly spaced where the sampler set the pace. */
function assertWellFormed(t: Trace): void {
  assert.ok(t.samples.length <= LIMITS.traceSamplesMax, `${t.samples.length} samples`);
  for (let i = 1; i < t.samples.length; i++) {
    assert.ok(t.samples[i]!.tMs >= t.samples[i - 1]!.tMs, 'in time order');
    assert.ok(t.samples[i]!.cpuMs >= t.samples[i - 1]!.cpuMs, 'cumulative CPU never goes back');
  }
}

describe('trace buffer', () => {
  it('keeps at most maxSamples: a full buffer drops every second sample and doubles the interval', () => {
    const b = new TraceBuffer(10, 4);
    for (let i = 0; i < 4; i++) b.push({ tMs: i * 10, cpuMs: i, rssKb: 1 });
    assert.equal(b.intervalMs, 10);
    b.push({ tMs: 40, cpuMs: 4, rssKb: 1 });
    assert.deepEqual(b.toTrace(), {
      intervalMs: 20,
      samples: [
        { tMs: 0, cpuMs: 0, rssKb: 1 },
        { tMs: 20, cpuMs: 2, rssKb: 1 },
        { tMs: 40, cpuMs: 4, rssKb: 1 },
      ],
    });
  });

  it('stays bounded and evenly spaced over a long run at the pace it sets', () => {
    const b = new TraceBuffer(EXEC_DEFAULTS.traceIntervalMs, LIMITS.traceSamplesMax);
    let t = 0;
    let maxLength = 0;
    // About 28 hours of sampling, paced as the sampler paces it: the next sample one (current) interval later.
    for (let i = 0; i < 20_000; i++) {
      b.push({ tMs: t, cpuMs: t / 2, rssKb: 100 });
      maxLength = Math.max(maxLength, b.length);
      t += b.intervalMs;
    }
    const trace = b.toTrace();
    assert.ok(maxLength <= LIMITS.traceSamplesMax);
    assertWellFormed(trace);
    assert.equal(trace.samples[0]!.tMs, 0, 'the first sample is kept');
    assert.equal(Math.log2(trace.intervalMs / EXEC_DEFAULTS.traceIntervalMs) % 1, 0, 'the interval only doubles');
    assert.ok(trace.samples.length > LIMITS.traceSamplesMax / 2, 'thinning keeps at least half');
    for (let i = 1; i < trace.samples.length; i++) assert.equal(trace.samples[i]!.tMs - trace.samples[i - 1]!.tMs, trace.intervalMs);
  });

  it('returns a copy', () => {
    const b = new TraceBuffer(10, 4);
    b.push({ tMs: 0, cpuMs: 0, rssKb: 0 });
    const t = b.toTrace();
    t.samples[0]!.cpuMs = 99;
    assert.equal(b.toTrace().samples[0]!.cpuMs, 0);
  });
});

describe('/proc parsing', () => {
  it('reads utime, stime, cutime, cstime and the start time after the last parenthesis', () => {
    // comm may hold spaces and parentheses.
    const fields = ['S', '1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '250', '50', '7', '3', '20', '0', '1', '0', '123456'];
    const stat = parseStat(`4242 (a) (b c) ${fields.join(' ')} 0 0 0\n`);
    assert.deepEqual(stat, { state: 'S', selfTicks: 300, childTicks: 10, startTicks: 123456 });
    assert.equal(parseStat('garbage'), null);
  });

  it('reads VmRSS, and none for a process with no memory left', () => {
    assert.equal(parseRssKb('Name:\tx\nVmPeak:\t  9000 kB\nVmRSS:\t    1234 kB\nRssAnon:\t 1 kB\n'), 1234);
    assert.equal(parseRssKb('Name:\tx\nState:\tZ (zombie)\n'), null);
  });
});

/** Timers that fire only when the test says so. */
function manualTimers(): TraceTimers & { pending: () => number; fire: () => void } {
  const queue: (() => void)[] = [];
  return {
    setTimeout: (fn) => {
      queue.push(fn);
      return fn;
    },
    clearTimeout: (h) => {
      const i = queue.indexOf(h as () => void);
      if (i >= 0) queue.splice(i, 1);
    },
    pending: () => queue.length,
    fire: () => queue.shift()?.(),
  };
}

const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

function usage(cpuMs: number, rssKb: number, state = 'R', startTicks = 1): TreeUsage {
  return { cpuMs, rssKb, root: { state, selfTicks: 0, childTicks: 0, startTicks }, rootExiting: state === 'Z' };
}

describe('trace sampler (injected time and readings)', () => {
  it('samples at once and then every interval, until stopped', async () => {
    let now = 1000;
    const readings = [usage(0, 10), usage(50, 20), usage(40, 30), usage(120, 25)];
    const timers = manualTimers();
    const s = sampleProcess(7, { intervalMs: 50, now: () => now, timers, read: async () => readings.shift() ?? null });
    await settle();
    for (let i = 0; i < 3; i++) {
      assert.equal(timers.pending(), 1, 'one timer at a time');
      now += 50;
      timers.fire();
      await settle();
    }
    const trace = await s.stop();
    assert.equal(timers.pending(), 0, 'stop clears the timer');
    assert.deepEqual(trace, {
      intervalMs: 50,
      samples: [
        { tMs: 0, cpuMs: 0, rssKb: 10 },
        { tMs: 50, cpuMs: 50, rssKb: 20 },
        { tMs: 100, cpuMs: 50, rssKb: 30 }, // a lower reading (a descendant gone unreaped) does not make CPU go back
        { tMs: 150, cpuMs: 120, rssKb: 25 },
      ],
    });
    assert.deepEqual(await s.stop(), trace, 'stop is idempotent');
  });

  it('thins itself and slows down when it reaches maxSamples', async () => {
    let now = 0;
    let cpu = 0;
    const timers = manualTimers();
    const s = sampleProcess(7, { intervalMs: 10, maxSamples: 8, now: () => now, timers, read: async () => usage((cpu += 5), 1) });
    await settle();
    for (let i = 0; i < 100; i++) {
      now += s.trace()!.intervalMs;
      timers.fire();
      await settle();
    }
    const trace = (await s.stop())!;
    assert.ok(trace.samples.length <= 8);
    assert.ok(trace.intervalMs >= 10 * 2 ** 4, `the interval doubled as the run went on (${trace.intervalMs})`);
    assertWellFormed(trace);
  });

  it('ends at the last good sample once the process is gone, a zombie, or its pid belongs to another process', async () => {
    const timers = manualTimers();
    const gone = sampleProcess(7, { now: () => 0, timers, read: async () => null });
    await settle();
    assert.equal(timers.pending(), 0, 'no more reads');
    assert.equal(await gone.stop(), null, 'never read: no trace');

    const reads = [usage(10, 100), usage(30, 0, 'Z'), usage(99, 99)];
    let calls = 0;
    const zombie = sampleProcess(7, { now: () => 0, timers, read: async () => (calls++, reads.shift() ?? null) });
    await settle();
    timers.fire();
    await settle();
    const z = await zombie.stop();
    assert.deepEqual(z?.samples.map((x) => [x.cpuMs, x.rssKb]), [[10, 100], [30, 100]], 'the zombie gives its final CPU; its memory is the last known');
    assert.equal(calls, 2, 'nothing read after the zombie');

    const reused = [usage(10, 1, 'R', 5), usage(20, 1, 'R', 5), usage(900, 1, 'R', 6)];
    const r = sampleProcess(7, { now: () => 0, timers, read: async () => reused.shift() ?? null });
    await settle();
    timers.fire();
    await settle();
    timers.fire();
    await settle();
    assert.deepEqual((await r.stop())?.samples.map((x) => x.cpuMs), [10, 20], 'a new process under the old pid is not read');
  });

  it('never throws when a read fails', async () => {
    const s = sampleProcess(7, { timers: manualTimers(), read: () => Promise.reject(new Error('EACCES')) });
    await settle();
    assert.equal(await s.stop(), null);
    assert.equal(await new TraceSampler(7).stop(), null, 'stopped before it started');
  });
});

describe('handler traces', () => {
  it('copies the known fields and thins a trace that is too long', () => {
    const samples = Array.from({ length: LIMITS.traceSamplesMax * 3 }, (_, i) => ({ tMs: i, cpuMs: i, rssKb: 1, extra: 'x' }));
    const t = normalizeTrace({ intervalMs: 1, samples });
    assert.ok(t.samples.length <= LIMITS.traceSamplesMax);
    assert.equal(t.intervalMs, 4);
    assert.deepEqual(t.samples[1], { tMs: 4, cpuMs: 4, rssKb: 1 });
  });

  it('refuses what the coordinator would refuse', () => {
    assert.throws(() => normalizeTrace(null), TypeError);
    assert.throws(() => normalizeTrace({ intervalMs: -1, samples: [] }), TypeError);
    assert.throws(() => normalizeTrace({ intervalMs: 1, samples: [{ tMs: 0, cpuMs: Number.NaN, rssKb: 0 }] }), TypeError);
    assert.throws(() => normalizeTrace({ intervalMs: 1, samples: [{ tMs: 5, cpuMs: 0, rssKb: 0 }, { tMs: 4, cpuMs: 0, rssKb: 0 }] }), /time order/);
  });
});

describe('trace of real processes (/proc)', { skip: !linux && 'needs Linux /proc' }, () => {
  const roots = mkdtempSync(join(tmpdir(), 'gaffer-trace-'));
  after(() => rmSync(roots, { recursive: true, force: true }));
  const CHILD = new URL('./fixtures/exec-child.ts', import.meta.url).pathname;
  const newId = idFactory(systemClock, systemRandom());

  async function traced(command: ExecOptions['command']): Promise<Trace> {
    const assignment = {
      attemptId: newId(), lease: 'L', jobId: newId(), workerId: 'W', queue: 'q', payload: null, gpuIds: [], cores: 0, memoryMb: 0,
      attempt: 1, timeoutMs: 60_000, heartbeatTimeoutMs: 30_000, leaseExpiresAt: 0, deadline: null, labels: {},
    } satisfies Assignment;
    const out = await runExec({ command, tmpRoot: join(roots, 'tmp'), outRoot: join(roots, 'out') }, { assignment, payload: null, signal: new AbortController().signal });
    assert.ok(out.trace, 'a trace on Linux');
    assertWellFormed(out.trace);
    assert.equal(out.trace.intervalMs, EXEC_DEFAULTS.traceIntervalMs, 'a short run is not thinned');
    assert.ok(out.trace.samples.length >= 2, `${out.trace.samples.length} samples`);
    return out.trace;
  }
  const finalCpu = (t: Trace): number => t.samples.at(-1)!.cpuMs;

  it('measures the CPU time of a busy child, and little for one that sleeps', T, async () => {
    // The busy child burns ~600 ms of CPU time (not wall time), so the bound holds on a loaded machine too.
    const busy = await traced([process.execPath, CHILD, 'burn', '600']);
    const sleeper = await traced(['sleep', '0.6']);
    assert.ok(finalCpu(busy) > 100, `busy: ${finalCpu(busy)} ms of CPU`);
    assert.ok(finalCpu(sleeper) < finalCpu(busy) / 3, `sleeper ${finalCpu(sleeper)} ms vs busy ${finalCpu(busy)} ms`);
    assert.ok(busy.samples.some((s) => s.rssKb > 1000), 'a node process holds megabytes');
    assert.ok(sleeper.samples.at(-1)!.tMs >= 400, 'the samples span the run');
  });

  it('counts the CPU of what a shell wrapper runs', T, async () => {
    // `; true` keeps the shell from exec'ing node in its place: node runs as the shell's child.
    const shell = await traced(`'${process.execPath}' '${CHILD}' burn 400; true`);
    assert.ok(finalCpu(shell) > 100, `shell-wrapped: ${finalCpu(shell)} ms of CPU`);
    // The shell itself burns next to nothing and reaps node only at the end: CPU seen mid-run is node's, a live descendant.
    const midRun = shell.samples.filter((s) => s.tMs < shell.samples.at(-1)!.tMs - 50);
    assert.ok(midRun.some((s) => s.cpuMs > 30), `mid-run CPU: ${midRun.map((s) => s.cpuMs).join(', ')}`);
  });

  it('reads this process, and nothing for a pid that does not exist', async () => {
    const self = await readTree(process.pid);
    assert.ok(self && self.cpuMs > 0 && self.rssKb > 0);
    assert.equal(await readTree(2 ** 22 + 1), null);
    const s = sampleProcess(2 ** 22 + 1);
    assert.equal(await s.stop(), null);
  });
});
