// The dashboard in a real browser: headless Chromium (the one the npm package
// @sparticuz/chromium ships) against a real coordinator on 127.0.0.1 with
// in-process workers. The page is watched, not slept on: every step waits for
// a condition on the page or in the API, with a timeout. Screenshots go to
// test-artifacts/dashboard/.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import chromium from '@sparticuz/chromium';
import type { FastifyInstance } from 'fastify';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { Coordinator } from '../coordinator/coordinator.ts';
import { LocalWorker, type Handler } from '../coordinator/local-worker.ts';
import { Auth } from '../server/auth.ts';
import { buildHttpApp } from '../server/http.ts';
import { openSqliteStore, type SqliteStore } from '../store/sqlite/store.ts';
import { systemClock, systemRandom } from '../types/clock.ts';
import type { Json } from '../types/model.ts';
import { buildDashboard } from './build.ts';

const ADMIN = 'dash-admin-token';
const CLIENT = 'dash-client-token';
const WORKER = 'dash-worker-token';
const ARTIFACTS_DIR = fileURLToPath(new URL('../../test-artifacts/dashboard/', import.meta.url));
/** Longest wait for one condition on the page; far above the 1 s poll and the event stream. */
const STEP_TIMEOUT_MS = 15_000;
const VIEWPORT = { width: 1280, height: 860 };
/**
 * The package's flags are made for serverless functions: one process (which cannot open a second browser
 * context) and no web security. The test wants a browser as a user has it.
 */
const DROPPED_ARGS = ['--single-process', '--disable-web-security', '--allow-running-insecure-content'];
// A machine whose locale is POSIX gives the browser the tag en-US@posix, which Intl (and so uPlot) refuses: the browser gets a plain one.

/** A handler whose calls wait until the test releases them. */
function gatedHandler(): { handler: Handler; calls: { payload: Json; release: (v: Json) => void }[] } {
  const calls: { payload: Json; release: (v: Json) => void }[] = [];
  const handler: Handler = (payload) => new Promise<Json>((release) => calls.push({ payload, release }));
  return { handler, calls };
}

async function launch(): Promise<Browser> {
  let path: string;
  try {
    path = await chromium.executablePath();
  } catch (err) {
    assert.fail(`no Chromium: @sparticuz/chromium could not unpack its browser: ${(err as Error).message}`);
  }
  try {
    return await puppeteer.launch({ executablePath: path, args: [...chromium.args.filter((a) => !DROPPED_ARGS.includes(a)), '--no-sandbox', '--lang=en-US'],
      env: { ...process.env, LANG: 'en_US.UTF-8' },
      headless: true, defaultViewport: VIEWPORT });
  } catch (err) {
    assert.fail(`Chromium at ${path} did not start: ${(err as Error).message}`);
  }
}

/** Waits until the figure with this data-figure key shows this value. */
async function figureIs(page: Page, key: string, value: string): Promise<void> {
  await page.waitForFunction(
    (k, v) => document.querySelector(`[data-figure="${k}"]`)?.textContent === v,
    { timeout: STEP_TIMEOUT_MS },
    key,
    value,
  );
}

/** Waits for the element, then clicks it inside the page in one step (a refresh cannot swap it in between). */
async function clickOn(page: Page, selector: string): Promise<void> {
  await page.waitForSelector(selector, { timeout: STEP_TIMEOUT_MS });
  await page.$eval(selector, (e) => (e as HTMLElement).click());
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(ARTIFACTS_DIR, `${name}.png`), fullPage: true });
}

async function signIn(page: Page, token: string): Promise<void> {
  await page.waitForSelector('#login #token', { timeout: STEP_TIMEOUT_MS });
  await page.type('#token', token);
  await page.click('#login button[type=submit]');
}

describe('dashboard in a browser', () => {
  let dir: string;
  let store: SqliteStore;
  let coordinator: Coordinator;
  let app: FastifyInstance;
  let base: string;
  let browser: Browser;
  const workers: LocalWorker[] = [];
  const prove = gatedHandler();
  let sealCalls = 0;

  const api = async (path: string, token = ADMIN): Promise<any> => {
    const res = await fetch(base + path, { headers: { authorization: `Bearer ${token}` } });
    return res.json();
  };

  before(async () => {
    await buildDashboard();
    mkdirSync(ARTIFACTS_DIR, { recursive: true });
    dir = mkdtempSync(join(tmpdir(), 'gaffer-dash-'));
    store = openSqliteStore({ path: join(dir, 'gaffer.db'), clock: systemClock, random: systemRandom(), synchronous: 'normal' });
    // No worker serves cc: its backlog of filler jobs stays queued, for the jobs list and the job page to mark.
    const queues = { cc: { backlog: { target: 2, job: { payload: { cc: true } } } } };
    coordinator = new Coordinator({ store, clock: systemClock, sweepIntervalMs: 50, queues });
    coordinator.start();
    const auth = new Auth([{ token: ADMIN, scopes: ['admin'] }, { token: CLIENT, scopes: ['client'] }, { token: WORKER, scopes: ['worker'] }]);
    app = await buildHttpApp({ coordinator, auth, logger: false });
    await app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    const seal: Handler = () => {
      sealCalls++;
      if (sealCalls === 1) throw new Error('disk full on scratch volume');
      return { sealed: true };
    };
    for (const [name, gpuIds] of [['gpu-box-1', [0, 1]], ['gpu-box-2', [0]]] as const) {
      const w = new LocalWorker({
        coordinator,
        clock: systemClock,
        spec: { name, labels: { zone: 'a' }, cores: 16, memoryMb: 65536, gpuIds: [...gpuIds], keys: [] },
        handlers: { prove: { slots: 2, handler: prove.handler }, seal: { slots: 1, handler: seal } },
        heartbeatIntervalMs: 200,
      });
      await w.start();
      workers.push(w);
    }
    browser = await launch();
  });

  after(async () => {
    await browser?.close();
    // Release every gated call, also those that reach a worker while the others stop (a drained worker's hand-backs).
    const releaseAll = (): void => void prove.calls.forEach((c) => c.release({ released: true }));
    releaseAll();
    const releasing = setInterval(releaseAll, 20);
    for (const w of workers) await w.stop();
    clearInterval(releasing);
    await app?.close();
    await coordinator?.stop();
    await store?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('serves the page, its modules and nothing outside its folder', async () => {
    const index = await fetch(base + '/');
    assert.equal(index.status, 200);
    assert.match(index.headers.get('content-type') ?? '', /^text\/html/);
    assert.equal(index.headers.get('cache-control'), 'no-cache');
    assert.ok(index.headers.get('etag'));
    const again = await fetch(base + '/', { headers: { 'if-none-match': index.headers.get('etag')! } });
    assert.equal(again.status, 304);
    const js = await fetch(base + '/dashboard/app.js');
    assert.match(js.headers.get('content-type') ?? '', /^text\/javascript/);
    assert.doesNotMatch(await js.text(), /from '\.\/[a-z]+\.ts'/);
    const css = await fetch(base + '/dashboard/vendor/uPlot.min.css');
    assert.match(css.headers.get('content-type') ?? '', /^text\/css/);
    for (const path of ['/dashboard/../package.json', '/dashboard/%2e%2e/package.json', '/dashboard/..%2fpackage.json', '/dashboard/build.js', '/dashboard/']) {
      const res = await fetch(base + path);
      assert.equal(res.status, 404, path);
    }
  });

  it('a wrong token gets the 401 message on the page, a token without the scope the 403 one', async () => {
    const ctx = await browser.createBrowserContext();
    const page = await ctx.newPage();
    await page.goto(base + '/');
    await signIn(page, 'not-a-token');
    await page.waitForSelector('#login-error', { timeout: STEP_TIMEOUT_MS });
    const text = await page.$eval('#login-error', (e) => e.textContent ?? '');
    assert.match(text, /UNAUTHORIZED \(401\): the bearer token is not valid/);
    assert.equal(page.url().includes('not-a-token'), false);
    await shot(page, 'login-wrong-token');
    // A token the server knows, without the client scope: the 403 and its message.
    await page.$eval('#token', (e) => { (e as HTMLInputElement).value = ''; });
    await page.type('#token', WORKER);
    await page.click('#login button[type=submit]');
    await page.waitForFunction(() => /FORBIDDEN \(403\)/.test(document.querySelector('#login-error')?.textContent ?? ''), { timeout: STEP_TIMEOUT_MS });
    assert.match(await page.$eval('#login-error', (e) => e.textContent ?? ''), /this token lacks the client scope/);
    await ctx.close();
  });

  it('a client token sees everything and may not touch workers', async () => {
    const ctx = await browser.createBrowserContext();
    const page = await ctx.newPage();
    await page.goto(base + '/#/workers');
    await signIn(page, CLIENT);
    await page.waitForSelector('#worker-list table', { timeout: STEP_TIMEOUT_MS });
    await page.waitForFunction(() => document.querySelectorAll('button[data-action="drain"]:disabled').length === 2, { timeout: STEP_TIMEOUT_MS });
    assert.equal(await page.$eval('#who', (e) => e.getAttribute('data-role')), 'client');
    assert.match(await page.$eval('#worker-list', (e) => e.textContent ?? ''), /needs an admin token/);
    assert.equal(await page.evaluate(() => sessionStorage.getItem('gaffer.token')), CLIENT);
    await ctx.close();
  });

  it('counts move as jobs run; a job and a worker open; cancel and drain take effect', async () => {
    const page = await browser.newPage();
    await page.goto(base + '/');
    await signIn(page, ADMIN);
    await page.waitForSelector('#worker-states', { timeout: STEP_TIMEOUT_MS });
    await figureIs(page, 'workers:idle', '2');

    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push((await coordinator.submit({ queue: 'prove', payload: { block: i }, labels: { chain: 'main' } })).job.id);
    await figureIs(page, 'prove:running', '4');
    await figureIs(page, 'prove:queued', '2');
    await figureIs(page, 'prove:slots-used', '4');
    await figureIs(page, 'workers:busy', '2');
    for (const c of prove.calls.splice(0, 2)) c.release({ proof: '0xabc' });
    await figureIs(page, 'prove:succeeded', '2');
    await figureIs(page, 'prove:queued', '0');
    const sealJob = (await coordinator.submit({ queue: 'seal', payload: { sector: 7 }, backoff: { baseMs: 20, maxMs: 50 } })).job;
    const sealed = await coordinator.waitForJob(sealJob.id, STEP_TIMEOUT_MS);
    assert.equal(sealed.state, 'succeeded', `the seal job is ${sealed.state} after ${STEP_TIMEOUT_MS} ms: ${JSON.stringify(await api(`/v1/jobs/${sealJob.id}`))}`);
    await figureIs(page, 'seal:succeeded', '1');
    await shot(page, 'overview');

    await page.goto(base + '/#/queues');
    await page.waitForSelector('#queue-table table', { timeout: STEP_TIMEOUT_MS });
    await shot(page, 'queues');
    const paths = Object.keys((await api('/v1/openapi.json')).paths);
    if (paths.includes('/v1/queues/{name}/pause')) {
      // The queue's button follows its state: pause, then resume, each seen through the API.
      await clickOn(page, 'button[data-action="pause"][data-queue="seal"]');
      await page.waitForSelector('button[data-action="resume"][data-queue="seal"]', { timeout: STEP_TIMEOUT_MS });
      assert.equal((await api('/v1/queues')).queues.find((q: { queue: string }) => q.queue === 'seal').paused, true);
      await clickOn(page, 'button[data-action="resume"][data-queue="seal"]');
      await page.waitForSelector('button[data-action="pause"][data-queue="seal"]', { timeout: STEP_TIMEOUT_MS });
      assert.equal((await api('/v1/queues')).queues.find((q: { queue: string }) => q.queue === 'seal').paused, false);
    } else {
      assert.match(await page.$eval('main', (e) => e.textContent ?? ''), /no pause and resume routes/);
    }

    await page.goto(`${base}/#/jobs?queue=prove`);
    await page.waitForFunction((n) => document.querySelectorAll('#job-list tbody tr').length === n, { timeout: STEP_TIMEOUT_MS }, 6);
    await shot(page, 'jobs');
    // Pages follow the cursor; the filters and the search go to the API.
    const rows = (): Promise<number> => page.$$eval('#job-list tbody tr', (trs) => trs.length);
    await page.goto(`${base}/#/jobs?queue=prove&limit=4`);
    await page.waitForFunction(() => document.querySelectorAll('#job-list tbody tr').length === 4, { timeout: STEP_TIMEOUT_MS });
    await clickOn(page, '#next-page');
    await page.waitForFunction(() => document.querySelectorAll('#job-list tbody tr').length === 2 && document.querySelector('#next-page')?.hasAttribute('disabled'), { timeout: STEP_TIMEOUT_MS });
    await clickOn(page, '#prev-page');
    await page.waitForFunction(() => document.querySelectorAll('#job-list tbody tr').length === 4, { timeout: STEP_TIMEOUT_MS });
    await page.select('#filter-state', 'succeeded');
    await page.click('#job-filters button[type=submit]');
    await page.waitForFunction(() => [...document.querySelectorAll('#job-list tbody tr [data-state]')].every((e) => e.getAttribute('data-state') === 'succeeded'), { timeout: STEP_TIMEOUT_MS });
    assert.equal(await rows(), 2);
    await page.type('#job-search', '01NOSUCHJOB');
    await page.click('#job-find button[type=submit]');
    await page.waitForFunction(() => /JOB_NOT_FOUND \(404\)/.test(document.querySelector('#banner')?.textContent ?? ''), { timeout: STEP_TIMEOUT_MS });

    await page.goto(`${base}/#/job/${sealJob.id}`);
    await page.waitForFunction(() => document.querySelectorAll('#timeline .tl-row').length === 2, { timeout: STEP_TIMEOUT_MS });
    assert.match(await page.$eval('#timeline', (e) => e.textContent ?? ''), /HANDLER_ERROR: disk full on scratch volume/);
    await shot(page, 'job');

    // The newest prove job is still queued or running: cancel it from its page.
    const victim = ids[5]!;
    await page.goto(`${base}/#/job/${victim}`);
    await page.waitForSelector('#cancel-job:not([disabled])', { timeout: STEP_TIMEOUT_MS });
    await clickOn(page, '#cancel-job:not([disabled])');
    await page.waitForFunction(() => document.querySelector('#job-fields [data-state]')?.getAttribute('data-state') === 'cancelled', { timeout: STEP_TIMEOUT_MS });
    assert.equal((await api(`/v1/jobs/${victim}`)).state, 'cancelled');
    await clickOn(page, '#retry-job:not([disabled])');
    await page.waitForFunction(() => ['queued', 'running'].includes(document.querySelector('#job-fields [data-state]')?.getAttribute('data-state') ?? ''), { timeout: STEP_TIMEOUT_MS });
    assert.ok(['queued', 'running'].includes((await api(`/v1/jobs/${victim}`)).state));

    const [w1] = (await api('/v1/workers')).workers.filter((w: { name: string }) => w.name === 'gpu-box-1');
    await page.goto(`${base}/#/worker/${w1.id}`);
    await page.waitForSelector('#worker-fields', { timeout: STEP_TIMEOUT_MS });
    const fields = await page.$eval('#worker-fields', (e) => e.textContent ?? '');
    assert.match(fields, /operator– \(no tokens\)/, 'the worker page names its operator (none: this coordinator has no worker tokens)');
    assert.match(fields, /may hold at once/);
    await shot(page, 'worker');
    if (paths.includes('/v1/workers/{id}/queues/{queue}/pause')) {
      // One queue paused on this worker alone, then resumed: the button follows the worker's state, seen through the API.
      await clickOn(page, `button[data-action="pause-queue"][data-queue="seal"][data-worker="${w1.id}"]:not([disabled])`);
      await page.waitForSelector('button[data-action="resume-queue"][data-queue="seal"]', { timeout: STEP_TIMEOUT_MS });
      assert.deepEqual((await api(`/v1/workers/${w1.id}`)).pausedQueues, ['seal']);
      assert.match(await page.$eval('#worker-queues', (e) => e.textContent ?? ''), /paused/);
      await shot(page, 'worker-queue-paused');
      await clickOn(page, 'button[data-action="resume-queue"][data-queue="seal"]:not([disabled])');
      await page.waitForSelector('button[data-action="pause-queue"][data-queue="seal"]', { timeout: STEP_TIMEOUT_MS });
      assert.deepEqual((await api(`/v1/workers/${w1.id}`)).pausedQueues, []);
    }
    await clickOn(page, 'button[data-action="drain"]:not([disabled])');
    await page.waitForFunction(() => document.querySelector('h1 [data-state]')?.getAttribute('data-state') === 'draining', { timeout: STEP_TIMEOUT_MS });
    const drained = await api(`/v1/workers/${w1.id}`);
    assert.equal(drained.draining, true);
    assert.equal(drained.state, 'draining');

    await page.goto(base + '/#/workers');
    await page.waitForSelector('#worker-list table', { timeout: STEP_TIMEOUT_MS });
    assert.match(await page.$eval('#worker-list thead', (e) => e.textContent ?? ''), /operator/);
    await shot(page, 'workers');
    // Quarantine and release the other worker from the list.
    const [w2] = (await api('/v1/workers')).workers.filter((w: { name: string }) => w.name === 'gpu-box-2');
    // A button is disabled while its request is in flight, so the worker's state is read from the API first, then seen on the page.
    const quarantinedIs = async (want: boolean): Promise<void> => {
      const until = Date.now() + STEP_TIMEOUT_MS;
      while ((await api(`/v1/workers/${w2.id}`)).quarantined !== want) {
        assert.ok(Date.now() < until, `worker ${w2.id} quarantined: ${want}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    await clickOn(page, `button[data-action="quarantine"][data-worker="${w2.id}"]:not([disabled])`);
    await quarantinedIs(true);
    await page.waitForSelector(`button[data-action="quarantine"][data-worker="${w2.id}"][disabled]`, { timeout: STEP_TIMEOUT_MS });
    await clickOn(page, `button[data-action="release"][data-worker="${w2.id}"]:not([disabled])`);
    await quarantinedIs(false);
    await page.waitForSelector(`button[data-action="quarantine"][data-worker="${w2.id}"]:not([disabled])`, { timeout: STEP_TIMEOUT_MS });
    await page.goto(base + '/#/advisor');
    await page.waitForSelector('#advice > *', { timeout: STEP_TIMEOUT_MS });
    await shot(page, 'advisor');
    await page.close();
  });

  it('marks the filler jobs of a backlog in the jobs list and on the job page, and filters them', async () => {
    const page = await browser.newPage();
    await page.goto(`${base}/#/jobs?queue=cc`);
    await signIn(page, CLIENT);
    await page.waitForFunction(() => document.querySelectorAll('#job-list tbody tr [data-state="filler"]').length === 2, { timeout: STEP_TIMEOUT_MS });
    await shot(page, 'jobs-filler');
    const [first] = (await api('/v1/jobs?queue=cc&filler=true')).jobs;
    assert.equal(first.filler, true);
    await page.goto(`${base}/#/job/${first.id}`);
    await page.waitForSelector('#job-filler', { timeout: STEP_TIMEOUT_MS });
    await page.goto(`${base}/#/jobs?queue=cc&filler=false`);
    await page.waitForFunction(() => /No job matches/.test(document.querySelector('#job-list')?.textContent ?? ''), { timeout: STEP_TIMEOUT_MS });
    assert.equal(await page.$eval('#filter-filler', (e) => (e as HTMLSelectElement).value), 'false');
    await page.close();
  });

  it('the trust page shows a result rejected by a verifier and a worker quarantined with its reason', async () => {
    let audits = 0;
    const audit: Handler = (): Json => (++audits === 1 ? { valid: false, reason: 'signature does not verify' } : { valid: true });
    const extra: [string, Record<string, { slots: number; handler: Handler }>][] = [
      ['signer-1', { sign: { slots: 1, handler: () => ({ sig: '0x1' }) } }],
      ['signer-2', { sign: { slots: 1, handler: () => ({ sig: '0x1' }) } }],
      ['auditor', { audit: { slots: 1, handler: audit } }],
    ];
    for (const [name, handlers] of extra) {
      const w = new LocalWorker({ coordinator, clock: systemClock, spec: { name, labels: {}, cores: 4, memoryMb: 4096, gpuIds: [], keys: [] }, handlers, heartbeatIntervalMs: 200 });
      await w.start();
      workers.push(w);
    }
    const job = (await coordinator.submit({ queue: 'sign', payload: { doc: 1 }, verify: { mode: 'queue', queue: 'audit' }, maxAttempts: 3 })).job;
    const done = await coordinator.waitForJob(job.id, STEP_TIMEOUT_MS);
    assert.equal(done.state, 'succeeded', JSON.stringify(await api(`/v1/jobs/${job.id}`)));
    const liar = (await api(`/v1/jobs/${job.id}`)).attemptList.find((a: { state: string }) => a.state === 'rejected').workerId;
    const res = await fetch(`${base}/v1/workers/${liar}/quarantine`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify({ reason: 'forged signatures' }) });
    assert.equal(res.status, 200);
    const trust = await api('/v1/history/trust');
    assert.deepEqual(trust.points.map((p: { queue: string; invalid: number }) => [p.queue, p.invalid]), [['sign', 1]]);

    const page = await browser.newPage();
    await page.goto(base + '/#/trust');
    await signIn(page, CLIENT);
    await figureIs(page, 'trust:invalid', '1');
    await page.waitForFunction(() => /forged signatures/.test(document.querySelector('#quarantined-workers')?.textContent ?? ''), { timeout: STEP_TIMEOUT_MS });
    await page.waitForSelector('#trust-note', { timeout: STEP_TIMEOUT_MS });
    await shot(page, 'trust');
    await page.close();
  });
});
