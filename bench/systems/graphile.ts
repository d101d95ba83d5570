// graphile-worker on PostgreSQL, through its public API: WorkerUtils.addJobs
// and addJob to enqueue, run() with a task list in the worker process, with
// `concurrency` and a pool of concurrency + 2 connections (its docs' advice),
// and a silent logger. Two variants: without the local queue (the default),
// and with it (worker.localQueue.size). graphile-worker deletes a job when it
// completes, without waiting for that before it emits `job:complete`, so a
// completion counts on the event and the run ends when its jobs view is empty.
import { EventEmitter } from 'node:events';
import { Logger, makeWorkerUtils, run, type Runner, type WorkerEvents } from 'graphile-worker';
import pg from 'pg';
import { ANALYZE_LOADED_TABLES_SQL, Counter, pollUntil, type BenchParams, type Consumer, type ConsumerOptions, type JsonConfig, type Producer, type System } from '../systems.ts';

const TASK = 'noop';
const silent = new Logger(() => () => undefined);

async function openProducer(config: JsonConfig): Promise<Producer> {
  const utils = await makeWorkerUtils({ connectionString: String(config.url), logger: silent });
  return {
    async submitBatch(from, count) {
      const specs: { identifier: string; payload: { i: number } }[] = [];
      for (let i = from; i < from + count; i++) specs.push({ identifier: TASK, payload: { i } });
      await utils.addJobs(specs);
    },
    async submitOne(i) {
      await utils.addJob(TASK, { i });
    },
    close: async () => {
      await utils.release();
    },
  };
}

function openConsumerWith(localQueue: boolean) {
  return async (config: JsonConfig, options: ConsumerOptions): Promise<Consumer> => {
    const url = String(config.url);
    const done = new Counter();
    const events: WorkerEvents = new EventEmitter();
    events.on('job:complete', () => done.add());
    const reader = new pg.Client({ connectionString: url });
    await reader.connect();
    let runner: Runner | null = null;
    return {
      async start() {
        runner = await run({
          connectionString: url,
          concurrency: options.concurrency,
          maxPoolSize: options.concurrency + 2,
          noHandleSignals: true,
          logger: silent,
          events,
          taskList: {
            [TASK]: async (payload) => {
              options.onStart((payload as { i: number }).i);
            },
          },
          ...(localQueue ? { preset: { worker: { localQueue: { size: options.params.graphileLocalQueueSize } } } } : {}),
        });
      },
      async completed(n) {
        await done.reach(n);
        await pollUntil(async () => Number((await reader.query('SELECT count(*) AS n FROM graphile_worker.jobs')).rows[0].n) === 0);
      },
      async close() {
        await runner?.stop();
        await reader.end();
      },
    };
  };
}

async function prepare(env: Parameters<System['prepare']>[0]) {
  const url = await env.newDatabase();
  const utils = await makeWorkerUtils({ connectionString: url, logger: silent });
  await utils.migrate();
  await utils.release();
  return { config: { url }, afterLoad: () => env.pgExec(url, ANALYZE_LOADED_TABLES_SQL), close: async () => undefined };
}

const describe = (lq: boolean) => (p: BenchParams): string =>
  `WorkerUtils.addJobs of ${p.batchSize}; run() with concurrency ${p.concurrency}, pool of ${p.concurrency + 2}` +
  (lq ? `, localQueue.size ${p.graphileLocalQueueSize}` : ', no local queue');

export const graphileWorker: System = {
  id: 'graphile-worker',
  label: 'graphile-worker',
  store: 'PostgreSQL',
  gaffer: false,
  needs: 'postgres',
  describe: describe(false),
  prepare,
  openProducer,
  openConsumer: openConsumerWith(false),
};

export const graphileWorkerLocalQueue: System = {
  id: 'graphile-worker-lq',
  label: 'graphile-worker (local queue)',
  store: 'PostgreSQL',
  gaffer: false,
  needs: 'postgres',
  describe: describe(true),
  prepare,
  openProducer,
  openConsumer: openConsumerWith(true),
};
