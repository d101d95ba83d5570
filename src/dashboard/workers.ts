// Workers: state, queues with slots, resources, reputation and heartbeat age;
// and one worker's page with what it holds, its queues (each paused or
// resumed on it alone), and drain, quarantine, release.
/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/// <reference lib="dom.asynciterable" />
import { enc, get, hasRoute, mayCall, post } from './api.ts';
import { duration, fill, fillIfChanged, h, link, pill, shortId, table, time } from './dom.ts';
import { runAction, type Page, type PageContext } from './page.ts';
import type { WorkerView } from './shapes.ts';

/** Workers per page of the list. */
export const WORKERS_PAGE_ROWS = 100;

const slotsText = (w: WorkerView): string =>
  Object.entries(w.queues).map(([q, n]) => `${q} ${w.running[q] ?? 0}/${n}${w.pausedQueues?.includes(q) ? ' (paused)' : ''}`).join(', ') || '–';

const WORKER_QUEUE_PAUSE = 'POST /v1/workers/{id}/queues/{queue}/pause';

/** The worker's queues (served or paused on it), each with its slots and a pause or resume button when the server has the routes. */
function queueTable(ctx: PageContext, w: WorkerView): HTMLElement {
  const paused = new Set(w.pausedQueues ?? []);
  const names = [...new Set([...Object.keys(w.queues), ...paused])].sort();
  const routes = hasRoute(ctx.caps, WORKER_QUEUE_PAUSE);
  const button = (q: string): HTMLElement | string => {
    if (!routes) return '';
    const action = paused.has(q) ? 'resume' : 'pause';
    const may = mayCall(ctx.caps, `POST /v1/workers/{id}/queues/{queue}/${action}`);
    const attrs = { type: 'button', 'data-action': `${action}-queue`, 'data-worker': w.id, 'data-queue': q, disabled: !may, title: may ? null : 'needs an admin token' };
    const b = h('button', attrs, action === 'pause' ? 'Pause here' : 'Resume here');
    b.addEventListener('click', () => void runAction(ctx, b, () => post(`/v1/workers/${enc(w.id)}/queues/${enc(q)}/${action}`), `Queue ${q} ${action}d on ${w.name}.`));
    return b;
  };
  const rows = names.map((q) => [
    h('span', {}, q),
    h('span', {}, w.queues[q] === undefined ? 'not served' : `${w.running[q] ?? 0} / ${w.queues[q]}`),
    paused.has(q) ? pill('paused') : h('span', { class: 'muted' }, 'on'),
    h('div', { class: 'actions' }, button(q)),
  ]);
  return h('div', { id: 'worker-queues' }, table(['queue', 'used / slots', 'here', ''], rows));
}
const age = (w: WorkerView, now: number): string => (w.lastSeenAt === null ? '–' : `${duration(now - w.lastSeenAt)} ago`);
/** Slow start: the attempts it may hold at once, against what it declares. */
function creditText(w: WorkerView): string {
  const declared = Object.values(w.queues).reduce((a, b) => a + b, 0);
  return w.reputation.credit >= declared ? `all ${declared} slots` : `${w.reputation.credit} of ${declared} slots (slow start)`;
}

const rep = (w: WorkerView): string => `${w.reputation.valid} valid, ${w.reputation.invalid} invalid, ${w.reputation.timedOut} timed out`;

/** The three admin actions, disabled (with a note) when the token lacks the admin scope. */
function workerActions(ctx: PageContext, w: WorkerView): HTMLElement {
  const may = mayCall(ctx.caps, 'POST /v1/workers/{id}/drain');
  const button = (action: 'drain' | 'quarantine' | 'release', label: string, done: string, disabled: boolean): HTMLButtonElement => {
    const b = h('button', { type: 'button', 'data-action': action, 'data-worker': w.id, class: action === 'quarantine' ? 'danger' : null, disabled: !may || disabled }, label);
    b.addEventListener('click', () => void runAction(ctx, b, () => post(`/v1/workers/${enc(w.id)}/${action}`), done));
    return b;
  };
  return h(
    'div',
    { class: 'actions' },
    button('drain', 'Drain', `Worker ${w.name} drains.`, w.draining || !w.connected),
    button('quarantine', 'Quarantine', `Worker ${w.name} quarantined.`, w.quarantined),
    button('release', 'Release', `Worker ${w.name} released.`, false),
    may ? null : h('span', { class: 'note needs-admin' }, 'needs an admin token'),
  );
}

export function workersPage(): Page {
  let ctx: PageContext;
  const list = h('div', { id: 'worker-list' });
  // The server pages the list by id: the cursors of the pages seen, the first page's null.
  const cursors: (string | null)[] = [null];
  let next: string | null = null;
  const prev = h('button', { type: 'button', id: 'workers-prev' }, '← previous');
  const more = h('button', { type: 'button', id: 'workers-next' }, 'next →');
  const pageNo = h('span', { class: 'note', id: 'workers-page' });
  prev.addEventListener('click', () => { if (cursors.length > 1) cursors.pop(); ctx.refresh(); });
  more.addEventListener('click', () => { if (next) cursors.push(next); ctx.refresh(); });
  return {
    render(root, c) {
      ctx = c;
      root.append(h('h1', {}, 'Workers'), list, h('p', { class: 'pager' }, prev, ' ', more, ' ', pageNo));
    },
    async refresh() {
      const cursor = cursors[cursors.length - 1];
      const page = await get<{ workers: WorkerView[]; nextCursor?: string | null; counts?: { total: number } }>(
        `/v1/workers?limit=${WORKERS_PAGE_ROWS}${cursor ? `&cursor=${enc(cursor)}` : ''}`,
      );
      const { workers } = page;
      next = page.nextCursor ?? null;
      prev.disabled = cursors.length <= 1;
      more.disabled = next === null;
      pageNo.textContent = `page ${cursors.length}, ${workers.length} of ${page.counts?.total ?? workers.length} workers, by id`;
      const now = Date.now();
      const rows = workers.map((w) => [
        link(`#/worker/${enc(w.id)}`, w.name || shortId(w.id)),
        h('span', {}, w.operator ?? '–'),
        pill(w.state),
        h('span', {}, slotsText(w)),
        h('span', {}, String(w.cores)),
        h('span', {}, `${w.memoryMb} MB`),
        h('span', {}, w.gpuIds.join(', ') || '–'),
        h('span', { title: w.quarantineReason ?? '' }, rep(w)),
        h('span', { 'data-heartbeat': w.id }, age(w, now)),
        workerActions(ctx, w),
      ]);
      // The heartbeat ages change every second: they are updated in place, the rest redrawn only on a change.
      fillIfChanged(list, workers.map((w) => ({ ...w, lastSeenAt: null })), workers.length === 0 ? h('p', { class: 'muted' }, 'No worker has connected.') : table(['worker', 'operator', 'state', 'queues (used/slots)', 'cores', 'memory', 'GPUs', 'reputation', 'last seen', ''], rows, [4]));
      for (const w of workers) {
        const cell = list.querySelector(`[data-heartbeat="${CSS.escape(w.id)}"]`);
        if (cell) cell.textContent = age(w, now);
      }
    },
  };
}

export function workerPage(): Page {
  let ctx: PageContext;
  const body = h('div', { id: 'worker' });
  const actions = h('div', { id: 'worker-actions' });
  const title = h('h1', {}, 'Worker');
  return {
    render(root, c) {
      ctx = c;
      root.append(title, actions, body);
    },
    async refresh() {
      const w = await get<WorkerView>(`/v1/workers/${enc(ctx.params[0] ?? '')}`);
      const now = Date.now();
      title.replaceChildren('Worker ', w.name, ' ', pill(w.state));
      const kv: [string, Node | string][] = [
        ['id', h('span', { class: 'mono' }, w.id)],
        ['operator', w.operator ?? '– (no tokens)'],
        ['runs on', w.host === null ? '– (not reported)' : `${w.host}${w.pid === null ? '' : `, pid ${w.pid}`}`],
        ['queues (used/slots)', slotsText(w)],
        ['may hold at once', creditText(w)],
        ['cores', String(w.cores)],
        ['memory', `${w.memoryMb} MB`],
        ['GPU ids', w.gpuIds.join(', ') || '–'],
        ['labels', Object.entries(w.labels).map(([k, v]) => `${k}=${v}`).join(' ') || '–'],
        ['connected', w.connected ? `since ${time(w.connectedAt)}` : 'no'],
        ['last seen', age(w, now)],
        ['reputation', `${rep(w)}; streak ${w.reputation.streak}`],
        ['quarantine', w.quarantined ? (w.quarantineReason ?? 'yes') : 'no'],
      ];
      const checks = Object.entries(w.checks);
      const attempts = w.attempts ?? [];
      fillIfChanged(actions, [w.id, w.draining, w.quarantined, w.connected], workerActions(ctx, w));
      fill(
        body,
        h('h2', {}, 'Details'),
        h('div', { class: 'kv', id: 'worker-fields' }, kv.map(([k, v]) => [h('div', {}, k), h('div', {}, v)])),
        h('h2', {}, 'Queues'),
        queueTable(ctx, w),
        checks.length > 0 ? [h('h2', {}, 'Reliability checks'), table(['queue', 'state', 'speed', 'reason', 'updated'], checks.map(([q, ch]) => [h('span', {}, q), pill(ch.state), h('span', {}, duration(ch.speedMs)), h('span', {}, ch.reason ?? ''), h('span', {}, time(ch.updatedAt))]))] : null,
        h('h2', {}, `Holds (${attempts.length})`),
        attempts.length === 0
          ? h('p', { class: 'muted' }, 'No attempt leased or running.')
          : table(['job', 'queue', 'state', 'leased', 'running for'], attempts.map((a) => [link(`#/job/${enc(a.jobId)}`, shortId(a.jobId), 'mono'), h('span', {}, a.queue), pill(a.state), h('span', {}, time(a.leasedAt)), h('span', {}, duration(now - (a.startedAt ?? a.leasedAt)))])),
      );
    },
  };
}
