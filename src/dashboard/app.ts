// The dashboard's entry: asks for a token when the server wants one (kept in
// sessionStorage, never in a URL), reads what the server offers, and shows
// the page the hash names, refreshed live.
/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/// <reference lib="dom.asynciterable" />
import { ApiError, get, getToken, loadCapabilities, setToken, type Capabilities } from './api.ts';
import { h } from './dom.ts';
import { Live } from './live.ts';
import type { Page, PageContext } from './page.ts';
import { advisorPage } from './advisor.ts';
import { jobPage } from './job.ts';
import { jobsPage } from './jobs.ts';
import { overviewPage } from './overview.ts';
import { queuesPage } from './queues.ts';
import { trustPage } from './trust.ts';
import { workerPage, workersPage } from './workers.ts';

const ROUTES: Record<string, { nav: string; make: () => Page }> = {
  '': { nav: 'overview', make: overviewPage },
  queues: { nav: 'queues', make: queuesPage },
  jobs: { nav: 'jobs', make: jobsPage },
  job: { nav: 'jobs', make: jobPage },
  workers: { nav: 'workers', make: workersPage },
  worker: { nav: 'workers', make: workerPage },
  advisor: { nav: 'advisor', make: advisorPage },
  trust: { nav: 'trust', make: trustPage },
};

const main = document.getElementById('main')!;
const banner = document.getElementById('banner')!;
const status = document.getElementById('status')!;
const who = document.getElementById('who')!;
let current: Page | null = null;
let caps: Capabilities | null = null;
const live = new Live({
  refresh: async () => {
    const page = current;
    try {
      await page?.refresh();
      if (page === current && main.hasAttribute('data-error')) {
        main.removeAttribute('data-error');
        if (banner.dataset.kind === 'refresh') banner.hidden = true;
      }
    } catch (err) {
      if (page !== current) return;
      const e = err as { status?: number; code?: string; message?: string };
      const text = `${e.code ?? 'ERROR'}${e.status ? ` (${e.status})` : ''}: ${e.message ?? String(err)}`;
      main.setAttribute('data-error', text);
      notify(`Could not refresh this page: ${text}`, true);
      banner.dataset.kind = 'refresh';
    }
  },
  onStatus: (ok, note) => {
    status.className = `status ${ok ? 'live' : 'stale'}`;
    status.textContent = note;
  },
});

function notify(message: string, isError = false): void {
  banner.hidden = false;
  banner.className = `banner${isError ? ' error' : ''}`;
  banner.textContent = message;
  banner.setAttribute('data-kind', isError ? 'error' : 'info');
}

function showPage(): void {
  if (!caps) return;
  const [path = '', search = ''] = location.hash.replace(/^#\/?/, '').split('?');
  const [name = '', ...params] = path.split('/').map(decodeURIComponent);
  const route = ROUTES[name] ?? ROUTES['']!;
  for (const a of document.querySelectorAll<HTMLAnchorElement>('#nav a')) a.classList.toggle('active', a.dataset.page === route.nav);
  current?.dispose?.();
  banner.hidden = true;
  current = route.make();
  const ctx: PageContext = { caps, params, query: new URLSearchParams(search), notify, refresh: () => void live.kick() };
  main.replaceChildren();
  current.render(main, ctx);
  void live.kick();
}

function showLogin(message: string | null): void {
  live.stop();
  current = null;
  status.textContent = '';
  who.textContent = '';
  const input = h('input', { type: 'password', id: 'token', autocomplete: 'off', placeholder: 'bearer token' });
  const form = h(
    'form',
    { class: 'card login', id: 'login' },
    h('h3', {}, 'This coordinator needs a token'),
    h('p', { class: 'note' }, 'A client token shows everything and may cancel and retry jobs; draining, quarantining and releasing workers need an admin token. The token stays in this tab (sessionStorage) and is sent as a bearer header.'),
    message ? h('p', { class: 'error-msg', id: 'login-error' }, message) : null,
    h('label', {}, 'Token', input),
    h('p', {}, h('button', { type: 'submit' }, 'Open the dashboard')),
  );
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    setToken(input.value.trim());
    void boot();
  });
  main.replaceChildren(form);
  input.focus();
}

function signOutLink(): HTMLElement {
  return h('a', { href: '#', id: 'signout', onclick: (ev: Event) => { ev.preventDefault(); setToken(null); void boot(); } }, 'sign out');
}

async function boot(): Promise<void> {
  try {
    await get('/v1/queues');
  } catch (err) {
    if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
      const had = getToken() !== null;
      showLogin(had ? `${err.code} (${err.status}): ${err.message}` : null);
      return;
    }
    notify(`The coordinator does not answer: ${(err as Error).message}`, true);
    return;
  }
  caps = await loadCapabilities();
  who.replaceChildren(
    caps.authEnabled ? `${caps.role} token · ` : 'no tokens on this coordinator',
    caps.authEnabled ? signOutLink() : '',
  );
  who.setAttribute('data-role', caps.role);
  live.start();
  showPage();
}

window.addEventListener('hashchange', showPage);
void boot();
