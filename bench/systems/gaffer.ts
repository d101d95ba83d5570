// Gaffer: `gaffer serve` in a process of its own, on the embedded SQLite store
// (a file, default settings) or on PostgreSQL; jobs go in through
// the TypeScript client (HTTP, POST /v1/jobs/batch and POST /v1/jobs), and a
// worker process runs one SDK Worker with `concurrency` slots on the queue and
// a no-op handler. A completion counts when the coordinator acknowledges the
// result (an `ack` frame, sent after the store committed it).
import { join } from 'node:path';
import { GafferClient } from '../../src/client/client.ts';
import type { JobSpec } from '../../src/types/model.ts';
import { Worker } from '../../src/worker/index.ts';
import { startGafferServe } from '../services.ts';
import { ANALYZE_LOADED_TABLES_SQL, Counter, type Consumer, type ConsumerOptions, type JsonConfig, type PrepareEnv, type Prepared, type Producer, type System } from '../systems.ts';

const QUEUE = 'bench.noop';

async function prepare(env: PrepareEnv, db: string, analyze: (() => Promise<void>) | undefined, serveArgs: string[] = []): Promise<Prepared> {
  const serve = await startGafferServe(db, env.serveNodeArgs, serveArgs);
  return {
    config: { url: serve.url },
    ...(analyze ? { afterLoad: analyze } : {}),
    servePid: serve.pid,
    close: () => serve.stop(),
  };
}

async function openProducer(config: JsonConfig): Promise<Producer> {
  const client = new GafferClient({ url: String(config.url) });
  return {
    async submitBatch(from, count) {
      const specs: JobSpec[] = [];
      for (let i = from; i < from + count; i++) specs.push({ queue: QUEUE, payload: { i } });
      const results = await client.submitMany(specs);
      if (results.length !== count) throw new Error(`gaffer: a batch of ${count} returned ${results.length} results`);
    },
    async submitOne(i) {
      await client.submit({ queue: QUEUE, payload: { i } });
    },
    async close() {},
  };
}

async function openConsumer(config: JsonConfig, options: ConsumerOptions): Promise<Consumer> {
  const done = new Counter();
  const worker = new Worker({
    urls: [String(config.url)],
    name: `bench-${process.pid}`,
    handleSignals: false,
    queues: {
      [QUEUE]: {
        slots: options.concurrency,
        handler: (payload) => {
          options.onStart((payload as { i: number }).i);
          return null;
        },
      },
    },
  });
  worker.on('ack', (frame) => {
    if (frame.ok) done.add();
  });
  return {
    start: () => worker.start(),
    completed: (n) => done.reach(n),
    close: () => worker.stop(),
  };
}

export const gafferSqlite: System = {
  id: 'gaffer-sqlite',
  label: 'Gaffer',
  store: 'SQLite (embedded)',
  gaffer: true,
  needs: null,
  describe: (p) => `gaffer serve on a SQLite file, default settings; client batch submit of ${p.batchSize}; one SDK worker with ${p.concurrency} slots`,
  prepare: (env) => prepare(env, join(env.tmpDir, 'gaffer.db'), undefined),
  openProducer,
  openConsumer,
};

/** The same with commits that never wait for the disk: what durability costs, and the like of Redis without an fsync'd AOF. */
export const gafferSqliteNormal: System = {
  id: 'gaffer-sqlite-normal',
  label: 'Gaffer',
  store: 'SQLite, --sqlite-sync normal',
  gaffer: true,
  needs: null,
  describe: (p) =>
    `gaffer serve on a SQLite file with --sqlite-sync normal (no fsync per commit: a power cut may lose the last commits, as with the peers' Redis); client batch submit of ${p.batchSize}; one SDK worker with ${p.concurrency} slots`,
  prepare: (env) => prepare(env, join(env.tmpDir, 'gaffer.db'), undefined, ['--sqlite-sync', 'normal']),
  openProducer,
  openConsumer,
};

/** The default run with the queue history off: what keeping the history costs on the hot path. */
export const gafferSqliteNoHistory: System = {
  id: 'gaffer-sqlite-nohistory',
  label: 'Gaffer',
  store: 'SQLite, --no-history',
  gaffer: true,
  needs: null,
  describe: (p) => `gaffer serve on a SQLite file, default settings but --no-history (no queue history kept); client batch submit of ${p.batchSize}; one SDK worker with ${p.concurrency} slots`,
  prepare: (env) => prepare(env, join(env.tmpDir, 'gaffer.db'), undefined, ['--no-history']),
  openProducer,
  openConsumer,
};

export const gafferPostgres: System = {
  id: 'gaffer-pg',
  label: 'Gaffer',
  store: 'PostgreSQL',
  gaffer: true,
  needs: 'postgres',
  describe: (p) => `gaffer serve on PostgreSQL (pool of 10, the default); client batch submit of ${p.batchSize}; one SDK worker with ${p.concurrency} slots`,
  async prepare(env) {
    const url = await env.newDatabase();
    return prepare(env, url, () => env.pgExec(url, ANALYZE_LOADED_TABLES_SQL));
  },
  openProducer,
  openConsumer,
};
