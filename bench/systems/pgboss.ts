// pg-boss on PostgreSQL, through its public API: insert() and send() to
// enqueue, work() in the worker process. The queue has `notify` on and the
// instances `useListenNotify`, so an idle worker wakes on a new job instead of
// waiting out its poll (at least 0.5 s). pg-boss hands jobs to a handler in
// batches, and only keeps fetching without a pause while fetches come back
// full (`burstWhenBatchFull`, ignored at batchSize 1), so its worker process
// runs `pgBossWorkers` workers (localConcurrency) that each fetch
// concurrency / pgBossWorkers jobs: `concurrency` jobs in flight at most, as
// for the others. A completion counts when the handler returns; the run ends
// when the store shows every job of the queue completed.
import { PgBoss } from 'pg-boss';
import pg from 'pg';
import { ANALYZE_LOADED_TABLES_SQL, Counter, pollUntil, type BenchParams, type Consumer, type ConsumerOptions, type JsonConfig, type Producer, type System } from '../systems.ts';

const QUEUE = 'bench-noop';

function batchOf(p: BenchParams, concurrency: number): { workers: number; batch: number } {
  const workers = Math.max(1, Math.min(p.pgBossWorkers, concurrency));
  return { workers, batch: Math.max(1, Math.floor(concurrency / workers)) };
}

async function openProducer(config: JsonConfig): Promise<Producer> {
  // A sender only: maintenance and scheduling are left to the worker's instance.
  const boss = new PgBoss({ connectionString: String(config.url), useListenNotify: true, supervise: false, schedule: false, migrate: false });
  boss.on('error', (err) => console.error(`pg-boss: ${String((err as Error).message ?? err)}`));
  await boss.start();
  return {
    async submitBatch(from, count) {
      const jobs: { data: { i: number } }[] = [];
      for (let i = from; i < from + count; i++) jobs.push({ data: { i } });
      await boss.insert(QUEUE, jobs);
    },
    async submitOne(i) {
      await boss.send(QUEUE, { i });
    },
    close: () => boss.stop({ graceful: false, close: true }),
  };
}

async function openConsumer(config: JsonConfig, options: ConsumerOptions): Promise<Consumer> {
  const url = String(config.url);
  const done = new Counter();
  const { workers, batch } = batchOf(options.params, options.concurrency);
  const boss = new PgBoss({ connectionString: url, useListenNotify: true, max: options.concurrency + 2 });
  boss.on('error', (err) => console.error(`pg-boss: ${String((err as Error).message ?? err)}`));
  await boss.start();
  const reader = new pg.Client({ connectionString: url });
  await reader.connect();
  return {
    async start() {
      await boss.work<{ i: number }>(
        QUEUE,
        { batchSize: batch, localConcurrency: workers, burstWhenBatchFull: true, pollingIntervalSeconds: 0.5 },
        async (jobs) => {
          for (const job of jobs) options.onStart(job.data.i);
          done.add(jobs.length);
        },
      );
    },
    async completed(n) {
      await done.reach(n);
      await pollUntil(async () => {
        const r = await reader.query(`SELECT count(*) AS n FROM pgboss.job WHERE name = $1 AND state <> 'completed'`, [QUEUE]);
        return Number(r.rows[0].n) === 0;
      });
    },
    async close() {
      await boss.stop({ graceful: true, close: true, timeout: 5000 });
      await reader.end();
    },
  };
}

export const pgBoss: System = {
  id: 'pg-boss',
  label: 'pg-boss',
  store: 'PostgreSQL',
  gaffer: false,
  needs: 'postgres',
  describe: (p) => {
    const { workers, batch } = batchOf(p, p.concurrency);
    return `insert() of ${p.batchSize}; work() with localConcurrency ${workers} × batchSize ${batch}, burstWhenBatchFull, LISTEN/NOTIFY on`;
  },
  async prepare(env) {
    const url = await env.newDatabase();
    const boss = new PgBoss({ connectionString: url, supervise: false, schedule: false });
    boss.on('error', () => undefined);
    await boss.start();
    await boss.createQueue(QUEUE, { notify: true });
    await boss.stop({ graceful: false, close: true });
    return { config: { url }, afterLoad: () => env.pgExec(url, ANALYZE_LOADED_TABLES_SQL), close: async () => undefined };
  },
  openProducer,
  openConsumer,
};
