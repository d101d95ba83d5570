// Where a job's submit-to-start time goes, one request at a time on an idle
// coordinator: a bare HTTP round trip, a read, a submit, submit-to-start and a
// result's acknowledgement, for `gaffer serve` on SQLite as it runs by
// default (an fsync per durable commit) and with --sqlite-sync normal (none),
// and a submit straight on a coordinator in this process. The first two rows
// are the floor under any submit over the HTTP API on this machine. Prints a markdown table; `--samples N` (default 500) after
// `--warmup N` (default 50) untimed ones.
//
//   npm run bench:latency
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { serve as serveInProcess } from '../src/cli/serve.ts';
import { GafferClient } from '../src/client/client.ts';
import { Worker } from '../src/worker/index.ts';
import { describeMachine } from './report.ts';
import { startGafferServe } from './services.ts';

const QUEUE = 'bench.latency';

interface Row {
  what: string;
  /** Per mode: the samples, in ms. */
  full: number[];
  normal: number[];
}

async function measure(mode: 'full' | 'normal', samples: number, warmup: number): Promise<Map<string, number[]>> {
  const dir = mkdtempSync(join(tmpdir(), 'gaffer-latency-'));
  const serve = await startGafferServe(join(dir, 'gaffer.db'), [], ['--sqlite-sync', mode]);
  const out = new Map<string, number[]>();
  const record = (what: string, i: number, ms: number): void => {
    if (i < warmup) return;
    const list = out.get(what) ?? [];
    list.push(ms);
    out.set(what, list);
  };
  let onStart: (() => void) | null = null;
  let onAck: (() => void) | null = null;
  const worker = new Worker({
    urls: [serve.url],
    name: 'latency',
    handleSignals: false,
    queues: { [QUEUE]: { slots: 1, handler: () => { onStart?.(); return null; } } },
  });
  worker.on('ack', () => onAck?.());
  try {
    const client = new GafferClient({ url: serve.url });
    await worker.start();
    const runs = warmup + samples;
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      const res = await fetch(`${serve.url}/healthz`);
      await res.text();
      record('HTTP round trip (GET /healthz)', i, performance.now() - t0);
    }
    const { job } = await client.submit({ queue: 'bench.nobody', payload: 0 });
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      await client.get(job.id);
      record('a read (GET /v1/jobs/:id)', i, performance.now() - t0);
    }
    for (let i = 0; i < runs; i++) {
      const started = new Promise<number>((resolve) => (onStart = () => resolve(performance.now())));
      const acked = new Promise<number>((resolve) => (onAck = () => resolve(performance.now())));
      const t0 = performance.now();
      await client.submit({ queue: QUEUE, payload: { i } });
      record('submit acknowledged (POST /v1/jobs)', i, performance.now() - t0);
      const t1 = await started;
      record('submit to handler start', i, t1 - t0);
      record('result to its acknowledgement', i, (await acked) - t1);
    }
  } finally {
    await worker.stop().catch(() => undefined);
    await serve.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  // The same submit without HTTP or another process: Coordinator.submit on a coordinator in this process.
  const inDir = mkdtempSync(join(tmpdir(), 'gaffer-latency-'));
  const local = await serveInProcess(
    { host: '127.0.0.1', port: 0, db: join(inDir, 'gaffer.db'), sqliteSync: mode, tokens: [], queues: {} },
    pino({ level: 'warn' }),
  );
  try {
    for (let i = 0; i < warmup + samples; i++) {
      const t0 = performance.now();
      await local.coordinator.submit({ queue: 'bench.nobody', payload: { i } });
      record('a submit inside the coordinator (no HTTP, one process)', i, performance.now() - t0);
    }
  } finally {
    await local.close();
    rmSync(inDir, { recursive: true, force: true });
  }
  return out;
}

function quantile(xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { samples: { type: 'string' }, warmup: { type: 'string' }, help: { type: 'boolean' } } });
  if (values.help) {
    console.log('npm run bench:latency [-- --samples N (500)] [--warmup N (50)]');
    return;
  }
  const samples = Number(values.samples ?? 500);
  const warmup = Number(values.warmup ?? 50);
  if (!Number.isInteger(samples) || samples < 10 || !Number.isInteger(warmup) || warmup < 0) throw new Error('--samples is at least 10, --warmup at least 0');
  const full = await measure('full', samples, warmup);
  const normal = await measure('normal', samples, warmup);
  const rows: Row[] = [...full.keys()].map((what) => ({ what, full: full.get(what)!, normal: normal.get(what) ?? [] }));
  const m = describeMachine(null, null);
  const f = (x: number): string => x.toFixed(2);
  const lines = [
    `# Gaffer latency floor: ${new Date().toISOString().slice(0, 10)} on ${m.host}`,
    '',
    `${m.cpu}, Node.js ${process.version}; one request at a time, ${samples} samples after ${warmup} untimed; gaffer serve on SQLite, one SDK worker with one slot, client and worker in this process.`,
    '',
    '| what | default (fsync) p50 ms | p99 ms | --sqlite-sync normal p50 ms | p99 ms |',
    '| --- | ---: | ---: | ---: | ---: |',
    ...rows.map((r) => `| ${r.what} | ${f(quantile(r.full, 0.5))} | ${f(quantile(r.full, 0.99))} | ${f(quantile(r.normal, 0.5))} | ${f(quantile(r.normal, 0.99))} |`),
    '',
  ];
  console.log(lines.join('\n'));
}

await main();
