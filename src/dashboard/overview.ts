// Overview: per queue, jobs by state, throughput, run time and slots; workers
// by state; charts over time from GET /v1/history when the server has it,
// else from what this page saw of GET /v1/queues since it opened.
/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/// <reference lib="dom.asynciterable" />
import { get, hasRoute } from './api.ts';
import { Chart } from './chart.ts';
import { duration, figure, fill, h, link, num, pill } from './dom.ts';
import { historyColumns, type HistoryAnswer } from './history.ts';
import type { Page, PageContext } from './page.ts';
import { JOB_STATE_ORDER, WORKER_STATE_ORDER, type QueuesAnswer, type QueueStats, type WorkerView } from './shapes.ts';

/** Samples of the page's own polls kept for the charts when the server keeps no history. */
export const LOCAL_MAX_SAMPLES = 600;
/** The ranges the charts offer; two weeks of hours is 336 points, under historyMaxPoints. */
export const HISTORY_RANGES = [
  { id: 'hour', label: 'last hour', step: 'minute', spanMs: 60 * 60_000 },
  { id: 'day', label: 'last day', step: 'hour', spanMs: 24 * 3_600_000 },
  { id: 'fortnight', label: 'last two weeks', step: 'hour', spanMs: 14 * 24 * 3_600_000 },
] as const;

export function queueCard(q: QueueStats): HTMLElement {
  const free = Math.max(0, q.slots.total - q.slots.used);
  const usedShare = q.slots.total > 0 ? (q.slots.used / q.slots.total) * 100 : 0;
  return h(
    'div',
    { class: 'card', 'data-queue': q.queue },
    h('h3', {}, link(`#/jobs?queue=${encodeURIComponent(q.queue)}`, q.queue), q.paused ? h('span', { title: String(q.pauseReason ?? '') }, pill('paused')) : null),
    h('div', { class: 'figures' }, JOB_STATE_ORDER.map((s) => figure(s, q.counts[s] ?? 0, `${q.queue}:${s}`))),
    h('h2', {}, 'Last ', duration(q.recent.spanMs)),
    h(
      'div',
      { class: 'figures five' },
      figure('per min', num(q.recent.throughputPerMinute, 1), `${q.queue}:throughput`),
      figure('completed', q.recent.completed, `${q.queue}:completed`),
      figure('failed', q.recent.failed, `${q.queue}:recent-failed`),
      figure('run mean', duration(q.recent.runTimeMeanMs)),
      figure('run p95', duration(q.recent.runTimeP95Ms)),
    ),
    h('h2', {}, 'Now'),
    h(
      'div',
      { class: 'figures five' },
      figure('oldest ready', q.oldestReadyAgeMs === undefined || q.oldestReadyAgeMs === null ? '–' : duration(q.oldestReadyAgeMs), `${q.queue}:oldest-ready`),
      figure('workers', q.slots.workers),
      figure('slots used', q.slots.used, `${q.queue}:slots-used`),
      figure('slots free', free, `${q.queue}:slots-free`),
      h('div', { class: 'figure' }, h('div', { class: 'bar', title: `${num(usedShare)}% used` }, h('span', { style: `width:${usedShare}%` }))),
    ),
  );
}

export function overviewPage(): Page {
  let ctx: PageContext;
  const workersEl = h('div', { id: 'worker-states', class: 'figures card' });
  const queuesEl = h('div', { class: 'cards', id: 'queue-cards' });
  const chartNote = h('p', { class: 'note', id: 'history-note' });
  const charts = [new Chart(), new Chart(), new Chart(), new Chart()] as const;
  let range: (typeof HISTORY_RANGES)[number] = HISTORY_RANGES[0];
  const picker = h('select', { id: 'history-range', style: 'width:auto;display:inline-block;margin-left:6px' }, HISTORY_RANGES.map((r) => h('option', { value: r.id }, r.label)));
  picker.addEventListener('change', () => {
    range = HISTORY_RANGES.find((r) => r.id === picker.value) ?? range;
    ctx.refresh();
  });
  let quantile = 0.95;
  const quantiles = h('select', { id: 'history-quantile', style: 'width:auto;display:inline-block;margin-left:6px' }, [0.5, 0.95, 0.99].map((q) => h('option', { value: String(q), selected: q === quantile }, `p${Math.round(q * 100)}`)));
  quantiles.addEventListener('change', () => {
    quantile = Number(quantiles.value);
    ctx.refresh();
  });
  const local: { t: number; queues: QueueStats[] }[] = [];

  const drawLocal = (queues: QueueStats[], why: string): void => {
    local.push({ t: Date.now() / 1000, queues });
    if (local.length > LOCAL_MAX_SAMPLES) local.shift();
    chartNote.textContent = `${why}: the charts show what this page has seen since it opened.`;
    const names = [...new Set(local.flatMap((s) => s.queues.map((q) => q.queue)))].sort();
    const pick = (f: (q: QueueStats) => number) => names.map((n) => local.map((s) => { const q = s.queues.find((x) => x.queue === n); return q ? f(q) : null; }));
    const t = local.map((s) => s.t);
    charts[0].set('jobs queued + running', names, [t, ...pick((q) => (q.counts.queued ?? 0) + (q.counts.running ?? 0))]);
    charts[1].set('completed per minute (last 5 min)', names, [t, ...pick((q) => q.recent.throughputPerMinute)]);
    charts[2].set('mean run time, last 5 min (ms)', names, [t, ...pick((q) => q.recent.runTimeMeanMs ?? Number.NaN)].map((c) => c.map((v) => (Number.isNaN(v) ? null : v))));
    charts[3].set('failed attempts, last 5 min', names, [t, ...pick((q) => q.recent.failed)]);
  };

  const drawCharts = async (queues: QueueStats[]): Promise<void> => {
    if (!hasRoute(ctx.caps, 'GET /v1/history')) return drawLocal(queues, 'This coordinator keeps no history (no GET /v1/history)');
    let hist: HistoryAnswer;
    try {
      hist = await get<HistoryAnswer>(`/v1/history?step=${range.step}&from=${Date.now() - range.spanMs}`);
    } catch (err) {
      return drawLocal(queues, `GET /v1/history failed (${(err as Error).message})`);
    }
    const cols = historyColumns(hist, quantile);
    const pq = `p${Math.round(quantile * 100)}`;
    if (cols.names.length === 0) return drawLocal(queues, 'No history yet (the coordinator adds each minute to GET /v1/history about a minute after it ends)');
    const per = range.step;
    chartNote.textContent = `Per ${per}, per queue, the ${range.label} of the coordinator\u2019s history (GET /v1/history). ${pq}: the bound of the histogram bucket holding that percentile.`;
    charts[0].set(`jobs succeeded per ${per}`, cols.names, cols.succeeded);
    charts[1].set(`jobs failed + attempts lost per ${per}`, cols.names, cols.failedLost);
    // A quantile exists only in steps where something ran: dots, since such steps often stand alone.
    charts[2].set(`run time ${pq} per ${per} (ms)`, cols.names, cols.runP95Ms, { points: true });
    charts[3].set(`wait ${pq} per ${per} (ms)`, cols.names, cols.waitP95Ms, { points: true });
  };

  return {
    render(root, c) {
      ctx = c;
      root.append(
        h('h1', {}, 'Overview'),
        h('h2', {}, 'Workers by state'),
        workersEl,
        h('h2', {}, 'Queues'),
        queuesEl,
        h('h2', {}, 'Over time ', picker, quantiles),
        chartNote,
        h('div', { class: 'grid2' }, charts[0].el, charts[1].el, charts[2].el, charts[3].el),
      );
    },
    async refresh() {
      // One worker is enough: the answer's counts are over all of them.
      const [queues, workers] = await Promise.all([get<QueuesAnswer>('/v1/queues'), get<{ workers: WorkerView[]; counts: { total: number; byState: Record<string, number> } }>('/v1/workers?limit=1')]);
      const { total, byState } = workers.counts;
      fill(workersEl, figure('workers', total, 'workers:total'), WORKER_STATE_ORDER.map((s) => figure(s, byState[s] ?? 0, `workers:${s}`)));
      fill(queuesEl, queues.queues.length === 0 ? h('p', { class: 'muted' }, 'No queue has jobs or workers yet.') : queues.queues.map(queueCard));
      await drawCharts(queues.queues);
    },
    dispose() {
      for (const c of charts) c.dispose();
    },
  };
}
