// Small DOM helpers: build elements, format figures, show JSON bounded.
/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/// <reference lib="dom.asynciterable" />

type Child = Node | string | number | null | undefined | false;
export type Children = Child | readonly Children[];
type Attrs = Record<string, string | number | boolean | null | undefined | ((ev: Event) => void)>;

/** An element with attributes (`on*` are listeners; false and null are left out) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Children[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (typeof v === 'function') el.addEventListener(k.slice(2).toLowerCase(), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of (children as unknown[]).flat(Infinity) as Child[]) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === 'object' ? c : String(c));
  }
  return el;
}

export function pill(state: string): HTMLSpanElement {
  return h('span', { class: `pill s-${state}`, 'data-state': state }, state);
}

export function figure(key: string, value: string | number, testId?: string): HTMLDivElement {
  return h('div', { class: 'figure' }, h('div', { class: 'v', 'data-figure': testId ?? key }, String(value)), h('div', { class: 'k' }, key));
}

/** Milliseconds as a short duration: 850 ms, 12.3 s, 4.2 min, 3.1 h. */
export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 3_600_000) return `${(ms / 60_000).toFixed(1)} min`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}

export function time(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '–';
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

export function num(n: number | null | undefined, digits = 0): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '–';
  return n.toFixed(digits);
}

/** Bytes of JSON shown at most; the rest is cut with a note of how much was left out. */
export const JSON_SHOWN_MAX_CHARS = 4000;

export function jsonBlock(value: unknown): HTMLPreElement {
  const text = value === undefined ? '–' : JSON.stringify(value, null, 2);
  if (text.length <= JSON_SHOWN_MAX_CHARS) return h('pre', {}, text);
  return h('pre', {}, text.slice(0, JSON_SHOWN_MAX_CHARS), h('span', { class: 'muted' }, `\n… ${text.length - JSON_SHOWN_MAX_CHARS} more characters not shown`));
}

export function link(href: string, text: string, cls?: string): HTMLAnchorElement {
  return h('a', { href, class: cls }, text);
}

export function shortId(id: string): string {
  return id.length > 12 ? `${id.slice(0, 4)}…${id.slice(-6)}` : id;
}

/**
 * Replaces the children of `el` when `key` (the data they show, as JSON) differs from the last one: a refresh
 * that changed nothing leaves the elements, and a button being clicked, in place.
 */
export function fillIfChanged(el: HTMLElement, key: unknown, ...children: Children[]): void {
  const text = JSON.stringify(key);
  if (el.dataset.shown === text) return;
  el.dataset.shown = text;
  fill(el, ...children);
}

/** Replaces the children of `el`. */
export function fill(el: Element, ...children: Children[]): void {
  el.replaceChildren(...h('div', {}, ...children).childNodes);
}

export function table(headers: string[], rows: Node[][], numeric: number[] = []): HTMLTableElement {
  return h(
    'table',
    {},
    h('thead', {}, h('tr', {}, headers.map((t, i) => h('th', { class: numeric.includes(i) ? 'num' : null }, t)))),
    h('tbody', {}, rows.map((r) => h('tr', {}, r.map((c, i) => h('td', { class: numeric.includes(i) ? 'num' : null }, c))))),
  );
}

export const text = (s: string | number): Text => document.createTextNode(String(s));
