// GET /metrics: the coordinator in the Prometheus text format, made by
// prom-client on a registry of its own (one per app, so that several
// coordinators in one process do not share series). Counters and histograms
// are fed by the coordinator's MetricsHooks as things happen; gauges of jobs,
// slots and workers are read from the store at scrape time (two bounded reads:
// queueCounts and listWorkers). Labels are queues, states, events and store
// operations: never a job or worker id. See docs/metrics.md.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Coordinator } from '../coordinator/coordinator.ts';
import { JOB_EVENTS, type JobEventName, type MetricsSink } from '../coordinator/metrics-hooks.ts';
import type { Worker } from '../types/model.ts';
import type { QueueCounts } from '../store/store.ts';
import { JOB_STATES, WORKER_STATES } from '../types/states.ts';
import type { Auth } from './auth.ts';

export const METRICS_PATH = '/metrics';

/** Seconds, from a cache hit to a long GPU job. */
const JOB_BUCKETS_SECONDS = [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 14_400];
const STORE_BUCKETS_SECONDS = [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10];

export interface MetricsDeps {
  coordinator: Coordinator;
  auth: Auth;
}

/** Adds GET /metrics (client scope when tokens are configured) and attaches the coordinator's hooks until the app closes. */
export function registerMetrics(app: FastifyInstance, deps: MetricsDeps): void {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const sink = jobSeries(registry);
  scrapeSeries(registry, deps.coordinator);
  deps.coordinator.metrics.attach(sink);
  app.addHook('onClose', async () => deps.coordinator.metrics.attach(null));
  app.route({
    method: 'GET',
    url: METRICS_PATH,
    onRequest: async (req: FastifyRequest) => void deps.auth.check(req.headers.authorization, 'client'),
    handler: async (_req, reply) => reply.type(registry.contentType).send(await registry.metrics()),
  });
}

/** The series fed as things happen. */
function jobSeries(registry: Registry): MetricsSink {
  const counters = new Map<JobEventName, Counter<'queue'>>();
  for (const event of JOB_EVENTS) {
    counters.set(event, new Counter({ name: `gaffer_jobs_${event}_total`, help: HELP[event], labelNames: ['queue'], registers: [registry] }));
  }
  const wait = new Histogram({
    name: 'gaffer_job_wait_seconds',
    help: 'Time from a job becoming ready to its lease, per queue.',
    labelNames: ['queue'],
    buckets: JOB_BUCKETS_SECONDS,
    registers: [registry],
  });
  const run = new Histogram({
    name: 'gaffer_attempt_run_seconds',
    help: 'Time from an attempt being leased to its worker reporting a result or a failure, per queue.',
    labelNames: ['queue'],
    buckets: JOB_BUCKETS_SECONDS,
    registers: [registry],
  });
  const store = new Histogram({
    name: 'gaffer_store_operation_seconds',
    help: 'Latency of store calls, per store operation.',
    labelNames: ['operation'],
    buckets: STORE_BUCKETS_SECONDS,
    registers: [registry],
  });
  return {
    jobs: (event, queue) => counters.get(event)!.inc({ queue }),
    waited: (queue, ms) => wait.observe({ queue }, ms / 1000),
    ran: (queue, ms) => run.observe({ queue }, ms / 1000),
    storeCall: (operation, ms) => store.observe({ operation }, ms / 1000),
  };
}

const HELP: Record<JobEventName, string> = {
  submitted: 'Jobs submitted through this coordinator, per queue.',
  succeeded: 'Jobs that succeeded, as this coordinator applied it, per queue.',
  failed: 'Jobs that ended failed, per queue.',
  cancelled: 'Jobs cancelled, per queue.',
  expired: 'Jobs that ended expired (their deadline passed before they ran), per queue.',
  retried: 'Jobs put back in the queue after an attempt ended (a retryable failure, a lost lease, a timeout, a quarantine) or by a retry request, per queue.',
  lost: 'Attempts whose lease expired without a heartbeat (LEASE_LOST), per queue.',
  timed_out: 'Attempts that ran past their timeout (TIMEOUT), per queue.',
};

/** The gauges read at scrape time; one scrape reads queue counts and workers once each. */
function scrapeSeries(registry: Registry, coordinator: Coordinator): void {
  let workers: Promise<Worker[]> | null = null;
  // The worker gauges share one listWorkers per scrape: the first collect reads, the others reuse it.
  const readWorkers = (): Promise<Worker[]> => (workers ??= coordinator.listWorkers({ summary: true }).finally(() => queueMicrotask(() => (workers = null))));
  let counts: Promise<QueueCounts[]> | null = null;
  // The job gauges share one queueCounts per scrape the same way.
  const readCounts = (): Promise<QueueCounts[]> => (counts ??= coordinator.queueCounts().finally(() => queueMicrotask(() => (counts = null))));
  new Gauge({
    name: 'gaffer_jobs',
    help: 'Jobs by queue and state, read from the store at scrape time.',
    labelNames: ['queue', 'state'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const q of (await orNull(readCounts())) ?? []) {
        for (const state of JOB_STATES) this.set({ queue: q.queue, state }, q.counts[state] ?? 0);
      }
    },
  });
  new Gauge({
    name: 'gaffer_filler_jobs_queued',
    help: 'Queued filler jobs per queue (made by the backlog keeper, [queues.NAME.backlog]); they are counted in gaffer_jobs{state="queued"} too.',
    labelNames: ['queue'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const q of (await orNull(readCounts())) ?? []) if (q.fillerQueued > 0) this.set({ queue: q.queue }, q.fillerQueued);
    },
  });
  new Gauge({
    name: 'gaffer_slots',
    help: 'Slots of the workers not offline, per queue: used (live attempts) and free.',
    labelNames: ['queue', 'use'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const [queue, s] of slotsByQueue((await orNull(readWorkers())) ?? [])) {
        this.set({ queue, use: 'used' }, s.used);
        this.set({ queue, use: 'free' }, Math.max(0, s.total - s.used));
      }
    },
  });
  workerGauges(registry, () => orNull(readWorkers()));
  new Gauge({
    name: 'gaffer_store_up',
    help: '1 while the store answers; 0 while it does not (the coordinator is not ready), as this scrape\'s own store reads found.',
    registers: [registry],
    async collect() {
      await orNull(readWorkers());
      this.set(coordinator.health.available ? 1 : 0);
    },
  });
  new Gauge({
    name: 'gaffer_worker_connections',
    help: 'Worker sessions attached to this coordinator now (open worker connections).',
    registers: [registry],
    collect() {
      this.set(coordinator.attachedWorkers);
    },
  });
}

function workerGauges(registry: Registry, readWorkers: () => Promise<Worker[] | null>): void {
  new Gauge({
    name: 'gaffer_workers',
    help: 'Workers known to the store, by state.',
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      this.reset();
      const list = await readWorkers();
      if (!list) return;
      for (const state of WORKER_STATES) this.set({ state }, list.filter((w) => w.state === state).length);
    },
  });
  new Gauge({
    name: 'gaffer_workers_quarantined',
    help: 'Workers quarantined now (by an operator or by their reputation).',
    registers: [registry],
    async collect() {
      this.reset();
      const list = await readWorkers();
      if (list) this.set(list.filter((w) => w.quarantined).length);
    },
  });
  new Gauge({
    name: 'gaffer_worker_results',
    help: 'Results judged, summed over the workers known to the store: valid, invalid, timed_out (from each reputation record; a release resets a record).',
    labelNames: ['verdict'],
    registers: [registry],
    async collect() {
      this.reset();
      const list = await readWorkers();
      if (!list) return;
      const sum = (f: (w: Worker) => number): number => list.reduce((n, w) => n + f(w), 0);
      this.set({ verdict: 'valid' }, sum((w) => w.reputation.valid));
      this.set({ verdict: 'invalid' }, sum((w) => w.reputation.invalid));
      this.set({ verdict: 'timed_out' }, sum((w) => w.reputation.timedOut));
    },
  });
}

/** A store read for a gauge, or null while the store is away: the gauge is left empty, and the scrape still answers. */
async function orNull<T>(read: Promise<T>): Promise<T | null> {
  try {
    return await read;
  } catch {
    return null;
  }
}

/** As GET /v1/queues counts them: workers not offline, their slots per served queue and live attempts. */
function slotsByQueue(workers: readonly Worker[]): Map<string, { total: number; used: number }> {
  const out = new Map<string, { total: number; used: number }>();
  for (const w of workers) {
    if (w.state === 'offline') continue;
    for (const [queue, total] of Object.entries(w.queues)) {
      const entry = out.get(queue) ?? { total: 0, used: 0 };
      entry.total += total;
      entry.used += w.running[queue] ?? 0;
      out.set(queue, entry);
    }
  }
  return out;
}
