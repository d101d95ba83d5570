// Jobs: one page at a time of GET /v1/jobs (cursor paging, never the whole
// list), filtered by queue, state, label and kind (the backlog keeper's filler
// jobs, marked in the list, or the others); and a search by id.
/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/// <reference lib="dom.asynciterable" />
import { ApiError, enc, get } from './api.ts';
import { duration, fillIfChanged, h, link, pill, table, time } from './dom.ts';
import type { Page, PageContext } from './page.ts';
import { JOB_STATE_ORDER, type Job, type QueuesAnswer } from './shapes.ts';

/** Jobs per page unless the hash asks for another number (#/jobs?limit=N); the server allows 1 to listMaxJobs. */
export const JOBS_PAGE_DEFAULT_JOBS = 50;
export const JOBS_PAGE_MAX_JOBS = 500;

interface Filters {
  queue: string;
  state: string;
  label: string;
  /** '', 'true' (filler jobs only) or 'false' (no filler jobs). */
  filler: string;
}

function jobRow(j: Job): Node[] {
  const ran = j.finishedAt !== null ? duration(j.finishedAt - j.createdAt) : '';
  return [
    link(`#/job/${enc(j.id)}`, j.id, 'mono'),
    h('span', {}, j.queue, j.filler ? [' ', pill('filler')] : null),
    pill(j.state),
    h('span', {}, String(j.priority)),
    h('span', {}, String(j.attempts)),
    h('span', { class: 'mono' }, Object.entries(j.labels).map(([k, v]) => `${k}=${v}`).join(' ')),
    h('span', {}, time(j.createdAt)),
    h('span', {}, ran),
    h('span', { class: 'mono' }, j.error ? j.error.code : ''),
  ];
}

export function jobsPage(): Page {
  let ctx: PageContext;
  const filters: Filters = { queue: '', state: '', label: '', filler: '' };
  const cursors: (string | null)[] = [null];
  let next: string | null = null;
  let pageMaxJobs = JOBS_PAGE_DEFAULT_JOBS;
  const list = h('div', { id: 'job-list' });
  const pageNo = h('span', { class: 'muted' });
  const prev = h('button', { type: 'button', id: 'prev-page' }, '← newer');
  const more = h('button', { type: 'button', id: 'next-page' }, 'older →');
  const queueSel = h('select', { name: 'queue', id: 'filter-queue' }, h('option', { value: '' }, 'all queues'));
  const stateSel = h('select', { name: 'state', id: 'filter-state' }, h('option', { value: '' }, 'all states'), JOB_STATE_ORDER.map((s) => h('option', { value: s }, s)));
  const fillerSel = h('select', { name: 'filler', id: 'filter-filler' }, h('option', { value: '' }, 'all jobs'), h('option', { value: 'true' }, 'filler only'), h('option', { value: 'false' }, 'no filler'));
  const labelIn = h('input', { name: 'label', id: 'filter-label', placeholder: 'key=value', size: 16 });
  const idIn = h('input', { name: 'id', id: 'job-search', placeholder: 'job id', size: 30 });

  const query = (): string => {
    const q = new URLSearchParams({ limit: String(pageMaxJobs) });
    if (filters.queue) q.set('queue', filters.queue);
    if (filters.state) q.set('state', filters.state);
    if (filters.label) q.set('label', filters.label);
    if (filters.filler) q.set('filler', filters.filler);
    const cursor = cursors[cursors.length - 1];
    if (cursor) q.set('cursor', cursor);
    return q.toString();
  };
  const apply = (): void => {
    filters.queue = queueSel.value;
    filters.state = stateSel.value;
    filters.label = labelIn.value.trim();
    filters.filler = fillerSel.value;
    cursors.splice(1);
    ctx.refresh();
  };
  prev.addEventListener('click', () => { if (cursors.length > 1) cursors.pop(); ctx.refresh(); });
  more.addEventListener('click', () => { if (next) cursors.push(next); ctx.refresh(); });

  const search = async (ev: Event): Promise<void> => {
    ev.preventDefault();
    const id = idIn.value.trim();
    if (!id) return;
    try {
      await get(`/v1/jobs/${enc(id)}`);
      location.hash = `#/job/${enc(id)}`;
    } catch (err) {
      ctx.notify(err instanceof ApiError ? `${err.code} (${err.status}): ${err.message}` : String(err), true);
    }
  };

  return {
    render(root, c) {
      ctx = c;
      filters.queue = c.query.get('queue') ?? '';
      filters.state = c.query.get('state') ?? '';
      filters.label = c.query.get('label') ?? '';
      filters.filler = ['true', 'false'].includes(c.query.get('filler') ?? '') ? c.query.get('filler')! : '';
      const asked = Number(c.query.get('limit'));
      if (Number.isInteger(asked) && asked >= 1) pageMaxJobs = Math.min(asked, JOBS_PAGE_MAX_JOBS);
      stateSel.value = filters.state;
      labelIn.value = filters.label;
      fillerSel.value = filters.filler;
      const form = h(
        'form',
        { class: 'filters', id: 'job-filters' },
        h('label', {}, 'Queue', queueSel), h('label', {}, 'State', stateSel), h('label', {}, 'Kind', fillerSel), h('label', {}, 'Label', labelIn),
        h('button', { type: 'submit' }, 'Filter'),
      );
      form.addEventListener('submit', (ev) => { ev.preventDefault(); apply(); });
      const find = h('form', { class: 'filters', id: 'job-find' }, h('label', {}, 'Find a job by id', idIn), h('button', { type: 'submit' }, 'Open'));
      find.addEventListener('submit', (ev) => void search(ev));
      root.append(h('h1', {}, 'Jobs'), h('div', { class: 'actions' }, form, find), list, h('div', { class: 'pager' }, prev, pageNo, more));
    },
    async refresh() {
      const [page, queues] = await Promise.all([get<{ jobs: Job[]; nextCursor: string | null }>(`/v1/jobs?${query()}`), get<QueuesAnswer>('/v1/queues')]);
      const names = queues.queues.map((q) => q.queue);
      if (filters.queue && !names.includes(filters.queue)) names.push(filters.queue);
      if (queueSel.options.length !== names.length + 1) {
        queueSel.replaceChildren(h('option', { value: '' }, 'all queues'), ...names.map((n) => h('option', { value: n }, n)));
        queueSel.value = filters.queue;
      }
      next = page.nextCursor;
      prev.disabled = cursors.length <= 1;
      more.disabled = next === null;
      pageNo.textContent = `page ${cursors.length}, ${page.jobs.length} jobs, newest first`;
      fillIfChanged(list, page.jobs, page.jobs.length === 0 ? h('p', { class: 'muted' }, 'No job matches.') : table(['id', 'queue', 'state', 'priority', 'attempts', 'labels', 'created', 'took', 'error'], page.jobs.map(jobRow), [3, 4]));
    },
  };
}
