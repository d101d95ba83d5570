// `npm run bench`: Gaffer on the embedded store and on PostgreSQL, BullMQ on
// Redis, graphile-worker (with and without its local queue) and pg-boss on
// PostgreSQL, measured one after the other on this machine with the same
// workload; the report goes to bench/results/<date>-<host>.md and .json and to
// stdout. See bench/README.md for the figures' definitions and the flags.
import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { ChildInit, ChildMessage } from './child.ts';
import { describeMachine, percentile, renderJson, renderMarkdown, type RunInfo, type SystemResult } from './report.ts';
import { startPostgres, startRedis, type PgServer, type RedisServer } from './services.ts';
import { loadSystem, SYSTEM_IDS, type BenchParams, type JsonConfig, type Producer, type PrepareEnv, type SystemId } from './systems.ts';

const CHILD = fileURLToPath(new URL('./child.ts', import.meta.url));
const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url));

const USAGE = `usage: npm run bench -- [options]

  --n <jobs>                  jobs per throughput run (default 5000; --smoke: 200)
  --concurrency <c>           jobs in flight in the worker process (default 16)
  --batch <b>                 jobs per enqueue call (default 1000; Gaffer takes at most 1000)
  --latency-samples <k>       sequential jobs measured for latency (default 1000; --smoke: 20)
  --latency-warmup <k>        sequential jobs run first and not measured (default 100; --smoke: 5)
  --systems <a,b,...>         any of ${SYSTEM_IDS.join(', ')} (default: all)
  --smoke                     a tiny, quick run that only checks that every system works
  --out <dir>                 where the .md and .json go (default bench/results; --smoke: a temp dir)
  --pg-url <url>              a PostgreSQL server to use (env GAFFER_BENCH_PG_URL; the bench creates and drops
                              databases on it); default: a throwaway cluster from the machine's PostgreSQL binaries
  --redis-url <url>           a Redis server to use (env GAFFER_BENCH_REDIS_URL; the bench flushes it);
                              default: a throwaway redis-server
  --graphile-local-queue <n>  graphile-worker's localQueue.size in its local-queue variant (default 500)
  --pg-boss-workers <w>       pg-boss workers (localConcurrency), each fetching concurrency / w jobs (default 2)
  --phase-timeout-s <s>       give up on a phase after this long (default 600; --smoke: 180)
  --prof-serve <dir>          write CPU profiles of the gaffer serve processes there (node --cpu-prof)
  --prof-worker <dir>         write CPU profiles of the worker processes there
`;

interface Options {
  params: BenchParams;
  n: number;
  latencySamples: number;
  latencyWarmup: number;
  systems: SystemId[];
  smoke: boolean;
  out: string;
  pgUrl: string | undefined;
  redisUrl: string | undefined;
  phaseTimeoutMs: number;
  serveNodeArgs: string[];
  workerNodeArgs: string[];
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      n: { type: 'string' },
      concurrency: { type: 'string' },
      batch: { type: 'string' },
      'latency-samples': { type: 'string' },
      'latency-warmup': { type: 'string' },
      systems: { type: 'string' },
      smoke: { type: 'boolean', default: false },
      out: { type: 'string' },
      'pg-url': { type: 'string' },
      'redis-url': { type: 'string' },
      'graphile-local-queue': { type: 'string' },
      'pg-boss-workers': { type: 'string' },
      'phase-timeout-s': { type: 'string' },
      'prof-serve': { type: 'string' },
      'prof-worker': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const smoke = values.smoke;
  const int = (name: string, v: string | undefined, dflt: number, min = 1): number => {
    if (v === undefined) return dflt;
    const x = Number(v);
    if (!Number.isInteger(x) || x < min) throw new Error(`--${name} takes an integer of at least ${min}, not ${v}`);
    return x;
  };
  const systems = (values.systems?.split(',').map((s) => s.trim()).filter((s) => s !== '') ?? [...SYSTEM_IDS]) as SystemId[];
  for (const s of systems) if (!SYSTEM_IDS.includes(s)) throw new Error(`unknown system ${s}: the systems are ${SYSTEM_IDS.join(', ')}`);
  const batchSize = int('batch', values.batch, 1000);
  if (batchSize > 1000) throw new Error('--batch is at most 1000 (Gaffer\'s batch submit limit)');
  const prof = (dir: string | undefined): string[] => (dir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', resolve(dir)]);
  return {
    params: {
      concurrency: int('concurrency', values.concurrency, 16),
      batchSize,
      graphileLocalQueueSize: int('graphile-local-queue', values['graphile-local-queue'], 500, 2),
      pgBossWorkers: int('pg-boss-workers', values['pg-boss-workers'], 2),
    },
    n: int('n', values.n, smoke ? 200 : 5000),
    latencySamples: int('latency-samples', values['latency-samples'], smoke ? 20 : 1000),
    latencyWarmup: int('latency-warmup', values['latency-warmup'], smoke ? 5 : 100, 0),
    systems,
    smoke,
    out: values.out !== undefined ? resolve(values.out) : smoke ? mkdtempSync(join(tmpdir(), 'gaffer-bench-smoke-')) : RESULTS_DIR,
    pgUrl: values['pg-url'] ?? (process.env.GAFFER_BENCH_PG_URL || undefined),
    redisUrl: values['redis-url'] ?? (process.env.GAFFER_BENCH_REDIS_URL || undefined),
    phaseTimeoutMs: int('phase-timeout-s', values['phase-timeout-s'], smoke ? 180 : 600) * 1000,
    serveNodeArgs: prof(values['prof-serve']),
    workerNodeArgs: prof(values['prof-worker']),
  };
}

const runStart = performance.now();
function log(msg: string): void {
  process.stderr.write(`[bench ${((performance.now() - runStart) / 1000).toFixed(1)}s] ${msg}\n`);
}

// ---- Worker processes ----

interface Child {
  ready: Promise<void>;
  done: Promise<Extract<ChildMessage, { type: 'done' }>>;
  go(): void;
  close(): Promise<void>;
}

function startChild(init: ChildInit, timeoutMs: number, nodeArgs: string[]): Child {
  const child: ChildProcess = fork(CHILD, [], { execArgv: nodeArgs, stdio: ['ignore', 2, 2, 'ipc'] });
  let onReady!: () => void;
  let onDone!: (m: Extract<ChildMessage, { type: 'done' }>) => void;
  let fail!: (e: Error) => void;
  const failed = new Promise<never>((_, reject) => (fail = reject));
  failed.catch(() => undefined);
  const ready = Promise.race([new Promise<void>((r) => (onReady = r)), failed]);
  const done = Promise.race([new Promise<Extract<ChildMessage, { type: 'done' }>>((r) => (onDone = r)), failed]);
  ready.catch(() => undefined);
  done.catch(() => undefined);
  let finished = false;
  const timer = setTimeout(() => {
    fail(new Error(`${init.system} ${init.mode}: not done within ${timeoutMs / 1000} s`));
    child.kill('SIGKILL');
  }, timeoutMs);
  child.on('message', (m: ChildMessage) => {
    if (m.type === 'ready') onReady();
    else if (m.type === 'done') {
      finished = true;
      clearTimeout(timer);
      onDone(m);
    } else if (m.type === 'error') fail(new Error(`${init.system} ${init.mode} worker process: ${m.message}`));
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.once('exit', (code, signal) => {
    clearTimeout(timer);
    if (!finished) fail(new Error(`${init.system} ${init.mode}: the worker process exited (${code ?? signal}) before it was done`));
  });
  child.send(init);
  return {
    ready,
    done,
    go: () => child.send({ type: 'go' }),
    async close() {
      if (child.exitCode === null && child.signalCode === null) {
        if (child.connected) child.send({ type: 'close' });
        const kill = setTimeout(() => child.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(kill);
      }
    },
  };
}

// ---- One system ----

async function enqueue(producer: Producer, from: number, n: number, batch: number): Promise<void> {
  for (let k = 0; k < n; k += batch) await producer.submitBatch(from + k, Math.min(batch, n - k));
}

async function measure(
  id: SystemId,
  opts: Options,
  services: { pg: PgServer | null; redis: RedisServer | null },
): Promise<SystemResult> {
  const system = await loadSystem(id);
  const { n, params } = opts;
  const tmp = mkdtempSync(join(tmpdir(), `gaffer-bench-${id}-`));
  const databases: string[] = [];
  const env: PrepareEnv = {
    params,
    tmpDir: tmp,
    serveNodeArgs: opts.serveNodeArgs,
    async newDatabase() {
      if (!services.pg) throw new Error(`${id} needs PostgreSQL`);
      const name = `gaffer_bench_${id.replace(/-/g, '_')}_${databases.length}`;
      databases.push(name);
      return services.pg.createDatabase(name);
    },
    async pgExec(dbUrl, sql) {
      if (!services.pg) throw new Error(`${id} needs PostgreSQL`);
      await services.pg.exec(dbUrl, sql);
    },
    async redisUrl() {
      if (!services.redis) throw new Error(`${id} needs Redis`);
      await services.redis.flush();
      return services.redis.url;
    },
  };
  // Start every system on a quiet server: no checkpoint owed by the previous one.
  if (system.needs === 'postgres' && services.pg) await services.pg.exec(services.pg.url, 'CHECKPOINT').catch(() => undefined);
  log(`${id}: preparing`);
  const prepared = await system.prepare(env);
  const config: JsonConfig = prepared.config;
  const children: Child[] = [];
  const child = (init: ChildInit): Child => {
    const c = startChild(init, opts.phaseTimeoutMs, opts.workerNodeArgs);
    children.push(c);
    return c;
  };
  try {
    const producer = await system.openProducer(config);
    // Enqueue, with no worker running.
    let t0 = performance.now();
    await enqueue(producer, 0, n, params.batchSize);
    const enqueueMs = performance.now() - t0;
    log(`${id}: enqueued ${n} in ${(enqueueMs / 1000).toFixed(2)} s`);
    await prepared.afterLoad?.();

    // Drain the backlog from a worker process.
    const drain = child({ type: 'init', mode: 'drain', system: id, config, params, n });
    await drain.ready;
    drain.go();
    const drained = await drain.done;
    await drain.close();
    const drainMs = drained.ms!;
    if (drained.started < n) throw new Error(`${id}: the drain recorded ${n} completions but ran ${drained.started} handlers`);
    log(`${id}: drained ${n} in ${(drainMs / 1000).toFixed(2)} s`);

    // End to end: the consumer waits, idle; then n more jobs go in.
    const e2e = child({ type: 'init', mode: 'e2e', system: id, config, params, n });
    await e2e.ready;
    t0 = performance.now();
    await enqueue(producer, n, n, params.batchSize);
    const e2eDone = await e2e.done;
    const e2eMs = performance.now() - t0;
    await e2e.close();
    if (e2eDone.started < n) throw new Error(`${id}: the end-to-end run recorded ${n} completions but ran ${e2eDone.started} handlers`);
    log(`${id}: end to end ${n} in ${(e2eMs / 1000).toFixed(2)} s`);
    await producer.close();

    // Latency: sequential single jobs, producer and consumer in one worker process.
    const lat = child({
      type: 'init', mode: 'latency', system: id, config, params,
      warmup: opts.latencyWarmup, samples: opts.latencySamples, firstPayload: 2 * n,
    });
    const latDone = await lat.done;
    await lat.close();
    const samples = [...(latDone.samplesMs ?? [])].sort((a, b) => a - b);
    if (samples.length !== opts.latencySamples) throw new Error(`${id}: ${samples.length} latency samples, not ${opts.latencySamples}`);
    const latency = {
      samples: samples.length,
      p50Ms: percentile(samples, 50),
      p99Ms: percentile(samples, 99),
      meanMs: samples.reduce((a, b) => a + b, 0) / samples.length,
      maxMs: samples[samples.length - 1]!,
    };
    log(`${id}: latency p50 ${latency.p50Ms.toFixed(3)} ms, p99 ${latency.p99Ms.toFixed(3)} ms`);
    return {
      id,
      label: system.label,
      store: system.store,
      gaffer: system.gaffer,
      setup: system.describe(params),
      n,
      enqueueMs,
      drainMs,
      e2eMs,
      enqueueRate: (n / enqueueMs) * 1000,
      drainRate: (n / drainMs) * 1000,
      e2eRate: (n / e2eMs) * 1000,
      latency,
    };
  } finally {
    await Promise.all(children.map((c) => c.close()));
    await prepared.close();
    for (const name of databases) await services.pg?.dropDatabase(name).catch(() => undefined);
    rmSync(tmp, { recursive: true, force: true });
  }
}

// ---- The run ----

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  const started = Date.now();
  const loadAtStart = loadavg()[0]!;
  const needs = new Set<string>();
  for (const id of opts.systems) {
    const s = await loadSystem(id);
    if (s.needs) needs.add(s.needs);
  }
  let pg: PgServer | null = null;
  let redis: RedisServer | null = null;
  try {
    if (needs.has('redis')) {
      redis = await startRedis(opts.redisUrl);
      log(`Redis ${redis.version} at ${redis.url}${redis.owned ? ' (throwaway)' : ''}`);
    }
    if (needs.has('postgres')) {
      pg = await startPostgres(opts.pgUrl);
      log(`PostgreSQL ${pg.version}${pg.owned ? ' (throwaway cluster)' : ''}`);
    }
    const results: SystemResult[] = [];
    for (const id of opts.systems) results.push(await measure(id, opts, { pg, redis }));

    const machine = describeMachine(pg?.version ?? null, redis?.version ?? null);
    const run: RunInfo = {
      date: new Date(started).toISOString(),
      smoke: opts.smoke,
      n: opts.n,
      concurrency: opts.params.concurrency,
      batchSize: opts.params.batchSize,
      latencyWarmup: opts.latencyWarmup,
      latencySamples: opts.latencySamples,
      postgresSetup: pg === null ? null : pg.owned ? 'a throwaway cluster (initdb, pg_ctl) with stock settings (fsync and synchronous_commit on), max_connections 300, over TCP on 127.0.0.1' : 'a server given with --pg-url',
      redisSetup: redis === null ? null : redis.owned ? 'a throwaway redis-server with stock settings (RDB snapshots, no AOF) on 127.0.0.1' : 'a server given with --redis-url',
      wallSeconds: (Date.now() - started) / 1000,
      loadAverage: { start: loadAtStart, end: loadavg()[0]! },
    };
    const markdown = renderMarkdown(machine, run, results);
    mkdirSync(opts.out, { recursive: true });
    const base = join(opts.out, `${run.date.slice(0, 10)}-${machine.host.replace(/[^A-Za-z0-9._-]/g, '_')}${opts.smoke ? '-smoke' : ''}`);
    writeFileSync(`${base}.md`, markdown);
    writeFileSync(`${base}.json`, renderJson(machine, run, results));
    process.stdout.write(`${markdown}\n`);
    log(`wrote ${base}.md and ${base}.json`);
  } finally {
    await redis?.stop().catch((err: Error) => log(`stopping Redis: ${err.message}`));
    await pg?.stop().catch((err: Error) => log(`stopping PostgreSQL: ${err.message}`));
  }
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    process.stderr.write(`bench: ${err.message}\n`);
    process.exit(1);
  },
);
