// Queues: each queue's figures in a table, and pause and resume when the
// server has those routes.
/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/// <reference lib="dom.asynciterable" />
import { enc, get, hasRoute, mayCall, post } from './api.ts';
import { duration, fillIfChanged, h, link, num, pill, table } from './dom.ts';
import { runAction, type Page, type PageContext } from './page.ts';
import type { QueuesAnswer, QueueStats } from './shapes.ts';

function pauseButtons(ctx: PageContext, q: QueueStats): HTMLElement | string {
  if (!hasRoute(ctx.caps, 'POST /v1/queues/{name}/pause')) return '';
  const action = q.paused ? 'resume' : 'pause';
  const may = mayCall(ctx.caps, `POST /v1/queues/{name}/${action}`);
  const b = h('button', { type: 'button', 'data-action': action, 'data-queue': q.queue, disabled: !may, title: may ? null : 'needs an admin token' }, action === 'pause' ? 'Pause' : 'Resume');
  b.addEventListener('click', () => void runAction(ctx, b, () => post(`/v1/queues/${enc(q.queue)}/${action}`), `Queue ${q.queue}: ${action}d.`));
  return b;
}

export function queuesPage(): Page {
  let ctx: PageContext;
  const list = h('div', { id: 'queue-table' });
  const note = h('p', { class: 'note' });
  return {
    render(root, c) {
      ctx = c;
      note.textContent = hasRoute(c.caps, 'POST /v1/queues/{name}/pause') ? '' : 'This coordinator has no pause and resume routes.';
      root.append(h('h1', {}, 'Queues'), list, note);
    },
    async refresh() {
      const answer = await get<QueuesAnswer>('/v1/queues');
      const c = (q: QueueStats, s: string): HTMLElement => h('span', {}, String(q.counts[s] ?? 0));
      const rows = answer.queues.map((q) => [
        h('span', {}, link(`#/jobs?queue=${enc(q.queue)}`, q.queue), ' ', q.paused ? pill('paused') : ''),
        c(q, 'waiting'), c(q, 'queued'), c(q, 'running'), c(q, 'verifying'), c(q, 'succeeded'), c(q, 'failed'), c(q, 'cancelled'), c(q, 'expired'),
        h('span', {}, num(q.recent.throughputPerMinute, 1)),
        h('span', {}, `${duration(q.recent.runTimeMeanMs)} / ${duration(q.recent.runTimeP95Ms)}`),
        h('span', {}, `${q.slots.used} / ${q.slots.total} (${q.slots.workers} workers)`),
        h('div', { class: 'actions' }, pauseButtons(ctx, q)),
      ]);
      fillIfChanged(
        list,
        answer,
        h('p', { class: 'note' }, `Throughput and run times over the last ${duration(answer.windowMs)}.`),
        rows.length === 0 ? h('p', { class: 'muted' }, 'No queue yet.') : table(['queue', 'waiting', 'queued', 'running', 'verifying', 'succeeded', 'failed', 'cancelled', 'expired', 'per min', 'run mean / p95', 'slots used / total', ''], rows, [1, 2, 3, 4, 5, 6, 7, 8, 9]),
      );
    },
  };
}
