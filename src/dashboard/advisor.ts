// Advisor: what GET /v1/advice says, when the server has it.
/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/// <reference lib="dom.asynciterable" />
import { get, hasRoute } from './api.ts';
import { fill, h, jsonBlock, pill, table } from './dom.ts';
import type { Page, PageContext } from './page.ts';

interface Advice {
  queue?: string;
  kind?: string;
  severity?: string;
  message?: string;
  [more: string]: unknown;
}

function findList(answer: unknown): unknown[] | undefined {
  if (Array.isArray(answer)) return answer;
  return Object.values((answer ?? {}) as Record<string, unknown>).find((v): v is unknown[] => Array.isArray(v) && v.length > 0 && typeof v[0] === 'object');
}

function adviceList(answer: unknown): Advice[] {
  return (findList(answer) as Advice[] | undefined) ?? [];
}

/** A figure as a short text: numbers to at most 3 decimals, lists and objects as compact JSON. */
function cell(v: unknown): string {
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : v < 0.001 && v > 0 ? v.toExponential(1) : v.toFixed(3).replace(/\.?0+$/, '');
  if (v === null || v === undefined) return '–';
  if (typeof v === 'string') return v;
  return JSON.stringify(v);
}

export function advisorPage(): Page {
  let ctx: PageContext;
  const body = h('div', { id: 'advice' });
  return {
    render(root, c) {
      ctx = c;
      root.append(h('h1', {}, 'Advisor'), body);
    },
    async refresh() {
      if (!hasRoute(ctx.caps, 'GET /v1/advice')) {
        fill(body, h('p', { class: 'muted' }, 'This coordinator has no advisor (no GET /v1/advice).'));
        return;
      }
      const answer = await get<unknown>('/v1/advice');
      const items = adviceList(answer);
      const keys = [...new Set(items.flatMap((a) => Object.keys(a).filter((k) => k !== 'queue' && k !== 'status')))];
      const rest = Object.fromEntries(Object.entries((answer ?? {}) as Record<string, unknown>).filter(([, v]) => !Array.isArray(v) || v !== findList(answer)));
      fill(
        body,
        items.length === 0
          ? h('p', { class: 'muted' }, 'Nothing to advise.')
          : table(['queue', 'status', ...keys], items.map((a) => [h('span', {}, String(a.queue ?? '')), pill(String(a.status ?? a.severity ?? 'advice')), ...keys.map((k) => h('span', { class: 'mono' }, cell(a[k])))])),
        Object.keys(rest).length > 0 ? [h('h2', {}, 'Summary'), jsonBlock(rest)] : null,
        h('details', {}, h('summary', { class: 'note' }, 'raw answer'), jsonBlock(answer)),
      );
    },
  };
}
