// Trust: results rejected and reliability checks failed over time (GET
// /v1/history/trust), the workers quarantined now with their reasons, and the
// workers with the worst records.
/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/// <reference lib="dom.asynciterable" />
import { enc, get, hasRoute } from './api.ts';
import { Chart } from './chart.ts';
import { figure, fill, h, link, pill, shortId, table } from './dom.ts';
import type { Page, PageContext } from './page.ts';
import type { WorkerView } from './shapes.ts';

export interface TrustPoint {
  queue: string;
  at: number;
  invalid: number;
  failedChecks: number;
}

interface TrustAnswer {
  step: string;
  from: number;
  to: number;
  points: TrustPoint[];
}

/** The ranges offered: a step and how far back. Two weeks of hours is 336 points, under historyMaxPoints. */
export const TRUST_RANGES = [
  { id: 'hour', label: 'last hour', step: 'minute', spanMs: 60 * 60_000, stepMs: 60_000 },
  { id: 'day', label: 'last day', step: 'hour', spanMs: 24 * 3_600_000, stepMs: 3_600_000 },
  { id: 'fortnight', label: 'last two weeks', step: 'hour', spanMs: 14 * 24 * 3_600_000, stepMs: 3_600_000 },
] as const;
/** The history is read again at most this often (the worker tables follow every refresh). */
export const TRUST_HISTORY_REFRESH_MS = 10_000;
/** Workers read per list (one page of GET /v1/workers, listMaxWorkers): the worst records are looked for among the first this many by id. */
export const TRUST_WORKERS_READ_MAX = 500;
/** Most workers listed under "worst records". */
export const TRUST_WORST_SHOWN_MAX = 20;

/** One line per queue over every step of the range (a step without a point had nothing in it). */
export function trustColumns(answer: TrustAnswer, stepMs: number, key: 'invalid' | 'failedChecks'): { names: string[]; columns: number[][] } {
  const names = [...new Set(answer.points.map((p) => p.queue))].sort();
  const first = Math.floor(answer.from / stepMs) * stepMs;
  const times: number[] = [];
  for (let t = first; t < answer.to && times.length <= 1440; t += stepMs) times.push(t);
  const at = new Map(answer.points.map((p) => [`${p.queue}\u0000${p.at}`, p[key]]));
  return { names, columns: [times.map((t) => t / 1000), ...names.map((n) => times.map((t) => at.get(`${n}\u0000${t}`) ?? 0))] };
}

const badShare = (w: WorkerView): number => {
  const judged = w.reputation.valid + w.reputation.invalid + w.reputation.timedOut;
  return judged === 0 ? 0 : (w.reputation.invalid + w.reputation.timedOut) / judged;
};

const failedChecks = (w: WorkerView): string =>
  Object.entries(w.checks)
    .filter(([, c]) => c.state === 'failed')
    .map(([q, c]) => `${q}: ${c.reason ?? 'failed'}`)
    .join('; ') || '–';

function workerRow(w: WorkerView): Node[] {
  return [
    link(`#/worker/${enc(w.id)}`, w.name || shortId(w.id)),
    pill(w.state),
    h('span', {}, String(w.reputation.valid)),
    h('span', {}, String(w.reputation.invalid)),
    h('span', {}, String(w.reputation.timedOut)),
    h('span', {}, `${Math.round(badShare(w) * 100)}%`),
    h('span', { class: 'reason' }, w.quarantineReason ?? failedChecks(w)),
  ];
}

const HEADERS = ['worker', 'state', 'valid', 'invalid', 'timed out', 'bad share', 'reason / failed checks'];

export function trustPage(): Page {
  let ctx: PageContext;
  let range: (typeof TRUST_RANGES)[number] = TRUST_RANGES[1];
  let readAt = 0;
  const charts = [new Chart(), new Chart()] as const;
  const note = h('p', { class: 'note', id: 'trust-note' });
  const totals = h('div', { class: 'figures card', id: 'trust-totals' });
  const quarantined = h('div', { id: 'quarantined-workers' });
  const worst = h('div', { id: 'worst-workers' });
  const picker = h('select', { id: 'trust-range', style: 'width:auto;display:inline-block;margin-left:6px' }, TRUST_RANGES.map((r) => h('option', { value: r.id, selected: r.id === range.id }, r.label)));
  picker.addEventListener('change', () => {
    range = TRUST_RANGES.find((r) => r.id === picker.value) ?? range;
    readAt = 0;
    ctx.refresh();
  });

  const drawHistory = async (): Promise<void> => {
    if (!hasRoute(ctx.caps, 'GET /v1/history/trust')) {
      note.textContent = 'This coordinator keeps no trust history (no GET /v1/history/trust).';
      return;
    }
    if (Date.now() - readAt < TRUST_HISTORY_REFRESH_MS) return;
    readAt = Date.now();
    const answer = await get<TrustAnswer>(`/v1/history/trust?step=${range.step}&from=${Date.now() - range.spanMs}`);
    const sum = (k: 'invalid' | 'failedChecks'): number => answer.points.reduce((n, p) => n + p[k], 0);
    fill(totals, figure(`results rejected, ${range.label}`, sum('invalid'), 'trust:invalid'), figure(`checks failed, ${range.label}`, sum('failedChecks'), 'trust:failed-checks'));
    note.textContent = `Per ${range.step}, per queue (GET /v1/history/trust): rejected results by when their attempt finished, failed reliability checks by when they were judged.`;
    const inv = trustColumns(answer, range.stepMs, 'invalid');
    const chk = trustColumns(answer, range.stepMs, 'failedChecks');
    charts[0].set(`results rejected per ${range.step}`, inv.names, inv.columns);
    charts[1].set(`reliability checks failed per ${range.step}`, chk.names, chk.columns);
  };

  return {
    render(root, c) {
      ctx = c;
      root.append(
        h('h1', {}, 'Trust'),
        h('h2', {}, 'Range ', picker),
        totals,
        note,
        h('div', { class: 'grid2' }, charts[0].el, charts[1].el),
        h('h2', {}, 'Quarantined workers'),
        quarantined,
        h('h2', {}, 'Worst records'),
        h('p', { class: 'note' }, `The ${TRUST_WORST_SHOWN_MAX} workers with the largest share of invalid and timed-out results among those judged; quarantine or release them from their page.`),
        worst,
      );
    },
    async refresh() {
      const [held, { workers }] = await Promise.all([
        get<{ workers: WorkerView[] }>(`/v1/workers?state=quarantined&limit=${TRUST_WORKERS_READ_MAX}`).then((p) => p.workers),
        get<{ workers: WorkerView[] }>(`/v1/workers?limit=${TRUST_WORKERS_READ_MAX}`),
        drawHistory(),
      ]);
      fill(quarantined, held.length === 0 ? h('p', { class: 'muted' }, 'No worker is quarantined.') : table(HEADERS, held.map(workerRow), [2, 3, 4, 5]));
      const bad = workers.filter((w) => !w.quarantined && badShare(w) > 0).sort((a, b) => badShare(b) - badShare(a)).slice(0, TRUST_WORST_SHOWN_MAX);
      fill(worst, bad.length === 0 ? h('p', { class: 'muted' }, 'No worker has an invalid or timed-out result.') : table(HEADERS, bad.map(workerRow), [2, 3, 4, 5]));
    },
    dispose() {
      for (const c of charts) c.dispose();
    },
  };
}
