// A job: its fields, payload and result (shown bounded), parents, every
// attempt on a timeline with why it ended, and cancel and retry.
/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/// <reference lib="dom.asynciterable" />
import { enc, get, mayCall, post } from './api.ts';
import { duration, fillIfChanged, h, jsonBlock, link, pill, shortId, table, time } from './dom.ts';
import { runAction, type Page, type PageContext } from './page.ts';
import { TERMINAL_JOB_STATES, type Attempt, type JobView } from './shapes.ts';

const FIELDS: (keyof JobView)[] = ['queue', 'priority', 'attempts', 'failures', 'maxAttempts', 'timeoutMs', 'replicas', 'quorum', 'idempotencyKey', 'pinnedWorkerId'];
const TIMES: (keyof JobView)[] = ['createdAt', 'runAt', 'deadline', 'updatedAt', 'finishedAt'];

function fields(job: JobView): HTMLElement {
  const rows: Node[] = [];
  const add = (k: string, v: Node | string): void => { rows.push(h('div', {}, k), h('div', {}, v)); };
  add('state', pill(job.state));
  if (job.filler) add('kind', h('span', { id: 'job-filler' }, pill('filler'), ' made by the backlog keeper'));
  for (const f of FIELDS) add(f, String(job[f] ?? '–'));
  for (const f of TIMES) add(f, time(job[f] as number | null));
  add('labels', Object.entries(job.labels).map(([k, v]) => `${k}=${v}`).join(' ') || '–');
  // A job of a pipeline instance: its phase and number, and the instance (gaffer pipeline show ID).
  if (job.pipeline) add('pipeline', h('span', { id: 'job-pipeline' }, `${job.pipeline.phase} #${job.pipeline.index} of `, h('span', { class: 'mono', title: job.pipeline.id }, shortId(job.pipeline.id))));
  add('parents', job.dependsOn.length === 0 ? '–' : h('span', {}, job.dependsOn.map((id) => [link(`#/job/${enc(id)}`, shortId(id), 'mono'), ' '])));
  if (job.error) add('error', h('span', { class: 'error-msg', id: 'job-error' }, `${job.error.code}: ${job.error.message}`));
  return h('div', { class: 'kv', id: 'job-fields' }, rows);
}

/** One row per attempt: leased (light), running (dark), and how it ended (colour), on one time axis. */
export function timeline(attempts: Attempt[], now: number): HTMLElement {
  if (attempts.length === 0) return h('p', { class: 'muted', id: 'timeline' }, 'No attempt yet.');
  const start = Math.min(...attempts.map((a) => a.leasedAt));
  const live = attempts.some((a) => a.finishedAt === null);
  const end = Math.max(live ? now : start, ...attempts.map((a) => a.finishedAt ?? now));
  const span = Math.max(1, end - start);
  const pct = (t: number): number => ((t - start) / span) * 100;
  const seg = (cls: string, from: number, to: number, title: string): HTMLElement =>
    h('span', { class: `tl-seg ${cls}`, title, style: `left:${pct(from)}%;width:${Math.max(0.4, pct(to) - pct(from))}%` });
  const rows = attempts.map((a) => {
    const stop = a.finishedAt ?? now;
    const ran = a.startedAt ?? a.leasedAt;
    // Leased until it started (light); then running (dark) or, once it ended, the colour of how it ended.
    const segs = a.startedAt !== null ? [seg('leased', a.leasedAt, a.startedAt, `leased ${time(a.leasedAt)}`)] : [];
    if (a.finishedAt !== null || a.startedAt !== null) segs.push(seg(a.finishedAt === null ? 'running' : `end-${a.state}`, ran, stop, `${a.state} after ${duration(stop - a.leasedAt)}`));
    else segs.push(seg('leased', a.leasedAt, stop, `leased ${time(a.leasedAt)}`));
    const why = a.error ? `${a.error.code}: ${a.error.message}` : '';
    return h(
      'div',
      { class: 'tl-row', 'data-attempt': a.id },
      h('div', {}, pill(a.state), ' ', link(`#/worker/${enc(a.workerId)}`, shortId(a.workerId), 'mono'), h('div', { class: 'note' }, `${duration(stop - a.leasedAt)} ${why}`)),
      h('div', { class: 'tl-track' }, segs),
    );
  });
  return h('div', { class: 'timeline', id: 'timeline' }, h('div', { class: 'note' }, `${time(start)} → ${time(end)} (${duration(span)})`), rows);
}

function attemptTable(attempts: Attempt[]): HTMLElement {
  return table(
    ['attempt', 'worker', 'state', 'leased', 'started', 'ended', 'error'],
    attempts.map((a) => [
      h('span', { class: 'mono' }, shortId(a.id), a.backupOf === null ? '' : h('div', { class: 'note' }, `backup of ${shortId(a.backupOf)} (${a.backupReason})`)),
      link(`#/worker/${enc(a.workerId)}`, shortId(a.workerId), 'mono'),
      pill(a.state),
      h('span', {}, time(a.leasedAt)),
      h('span', {}, time(a.startedAt)),
      h('span', {}, time(a.finishedAt)),
      h('span', { class: 'mono error-msg' }, a.error ? `${a.error.code}: ${a.error.message}` : ''),
    ]),
  );
}

export function jobPage(): Page {
  let ctx: PageContext;
  const body = h('div', { id: 'job' });
  const cancel = h('button', { type: 'button', id: 'cancel-job', class: 'danger' }, 'Cancel');
  const retry = h('button', { type: 'button', id: 'retry-job' }, 'Retry');
  const id = (): string => ctx.params[0] ?? '';
  return {
    render(root, c) {
      ctx = c;
      cancel.addEventListener('click', () => void runAction(ctx, cancel, () => post(`/v1/jobs/${enc(id())}/cancel`, { reason: 'cancelled from the dashboard' }), 'Job cancelled.'));
      retry.addEventListener('click', () => void runAction(ctx, retry, () => post(`/v1/jobs/${enc(id())}/retry`), 'Job queued again.'));
      root.append(h('h1', {}, 'Job ', h('span', { class: 'mono' }, id())), h('div', { class: 'actions' }, cancel, retry), body);
    },
    async refresh() {
      const job = await get<JobView>(`/v1/jobs/${enc(id())}`);
      const attempts = job.attemptList ?? [];
      const ended = TERMINAL_JOB_STATES.includes(job.state);
      cancel.disabled = ended || !mayCall(ctx.caps, 'POST /v1/jobs/{id}/cancel');
      retry.disabled = !['failed', 'cancelled', 'expired'].includes(job.state) || !mayCall(ctx.caps, 'POST /v1/jobs/{id}/retry');
      // A live attempt's bar grows with the clock: redraw each second while one is live, else only on a change.
      const live = attempts.some((a) => a.finishedAt === null);
      fillIfChanged(
        body,
        live ? Date.now() : job,
        h('h2', {}, 'Fields'),
        fields(job),
        h('h2', {}, `Attempts (${attempts.length})`),
        timeline(attempts, Date.now()),
        attempts.length > 0 ? attemptTable(attempts) : null,
        h('div', { class: 'grid2' }, h('div', {}, h('h2', {}, 'Payload'), jsonBlock(job.payload)), h('div', {}, h('h2', {}, 'Result'), jsonBlock(job.result))),
      );
    },
  };
}
