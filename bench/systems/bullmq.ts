// BullMQ on Redis, through its public API: Queue.addBulk and Queue.add to
// enqueue, one Worker with `concurrency` in the worker process. Job options are
// BullMQ's defaults (completed jobs are kept). A completion counts on the
// Worker's `completed` event, emitted once Redis has moved the job to
// completed.
import { Queue, Worker } from 'bullmq';
import { Counter, type Consumer, type ConsumerOptions, type JsonConfig, type Producer, type System } from '../systems.ts';

const QUEUE = 'bench-noop';

function connection(config: JsonConfig): { host: string; port: number; maxRetriesPerRequest: null } {
  const u = new URL(String(config.redisUrl));
  return { host: u.hostname, port: Number(u.port || 6379), maxRetriesPerRequest: null };
}

async function openProducer(config: JsonConfig): Promise<Producer> {
  const queue = new Queue(QUEUE, { connection: connection(config) });
  await queue.waitUntilReady();
  return {
    async submitBatch(from, count) {
      const jobs: { name: string; data: { i: number } }[] = [];
      for (let i = from; i < from + count; i++) jobs.push({ name: 'noop', data: { i } });
      await queue.addBulk(jobs);
    },
    async submitOne(i) {
      await queue.add('noop', { i });
    },
    close: () => queue.close(),
  };
}

async function openConsumer(config: JsonConfig, options: ConsumerOptions): Promise<Consumer> {
  const done = new Counter();
  const worker = new Worker(
    QUEUE,
    async (job) => {
      options.onStart((job.data as { i: number }).i);
      return null;
    },
    { connection: connection(config), concurrency: options.concurrency, autorun: false },
  );
  worker.on('completed', () => done.add());
  worker.on('error', (err) => console.error(`bullmq worker: ${err.message}`));
  await worker.waitUntilReady();
  let running: Promise<void> | null = null;
  return {
    async start() {
      running = worker.run();
      running.catch((err: Error) => console.error(`bullmq worker: ${err.message}`));
    },
    completed: (n) => done.reach(n),
    async close() {
      await worker.close();
      await running?.catch(() => undefined);
    },
  };
}

export const bullmq: System = {
  id: 'bullmq',
  label: 'BullMQ',
  store: 'Redis',
  gaffer: false,
  needs: 'redis',
  describe: (p) => `Queue.addBulk of ${p.batchSize}; one Worker with concurrency ${p.concurrency}; default job options`,
  async prepare(env) {
    return { config: { redisUrl: await env.redisUrl() }, close: async () => undefined };
  },
  openProducer,
  openConsumer,
};
