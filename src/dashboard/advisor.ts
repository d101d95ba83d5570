// Advisor: what GET /v1/advice says, when the server has it.
/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/// <reference lib="dom.asynciterable" />
import { get, hasRoute } from './api.ts';
import { fill, h, jsonBlock } from './dom.ts';
import type { Page, PageContext } from './page.ts';

interface Advice {
  queue?: string;
  kind?: string;
  severity?: string;
  message?: string;
  [more: string]: unknown;
}

function adviceList(answer: unknown): Advice[] {
  if (Array.isArray(answer)) return answer as Advice[];
  const found = Object.values((answer ?? {}) as Record<string, unknown>).find(Array.isArray);
  return (found as Advice[] | undefined) ?? [];
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
      fill(
        body,
        items.length === 0 ? h('p', { class: 'muted' }, 'Nothing to advise.') : items.map((a) => h('div', { class: 'card', 'data-advice': a.kind ?? '' }, h('h3', {}, a.queue ?? '', ' ', h('span', { class: 'pill' }, a.severity ?? a.kind ?? 'advice')), h('p', {}, a.message ?? ''), jsonBlock(a))),
        h('details', {}, h('summary', { class: 'note' }, 'raw answer'), jsonBlock(answer)),
      );
    },
  };
}
