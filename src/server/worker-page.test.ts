// GET /v1/workers pages: by id after the cursor, bounded, with counts by state over all.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LIMITS } from '../types/limits.ts';
import type { Worker } from '../types/model.ts';
import { workerPage } from './http.ts';

const worker = (id: string, state: Worker['state']): Worker => ({ id, state }) as Worker;

describe('workerPage', async () => {
  const all = [worker('c', 'idle'), worker('a', 'busy'), worker('d', 'quarantined'), worker('b', 'idle'), worker('e', 'offline')];

  it('pages by id with a cursor, and counts every worker by state whatever the page', async () => {
    const first = await workerPage(all, { limit: 2 });
    assert.deepEqual(first.workers.map((w) => w.id), ['a', 'b']);
    assert.equal(first.nextCursor, 'b');
    assert.deepEqual(first.counts, { total: 5, byState: { connecting: 0, probing: 0, idle: 2, busy: 1, draining: 0, offline: 1, quarantined: 1 } });
    const second = await workerPage(all, { limit: 2, cursor: first.nextCursor! });
    assert.deepEqual(second.workers.map((w) => w.id), ['c', 'd']);
    const last = await workerPage(all, { limit: 2, cursor: second.nextCursor! });
    assert.deepEqual([last.workers.map((w) => w.id), last.nextCursor], [['e'], null]);
  });

  it('filters by state, and never returns more than listMaxWorkers', async () => {
    assert.deepEqual((await workerPage(all, { state: 'idle' })).workers.map((w) => w.id), ['b', 'c']);
    const many = Array.from({ length: LIMITS.listMaxWorkers + 5 }, (_, i) => worker(`w${String(i).padStart(5, '0')}`, 'idle'));
    const page = await workerPage(many, { limit: LIMITS.listMaxWorkers + 5 });
    assert.equal(page.workers.length, LIMITS.listMaxWorkers);
    assert.notEqual(page.nextCursor, null);
  });

  it('ends a page early once its workers pass listWorkersPageMaxBytes as JSON, and the next page goes on from there', async () => {
    const keys = Array.from({ length: 900 }, (_, i) => String(i).padStart(LIMITS.keyMaxChars, 'k')); // about 233 KB each
    const fat = Array.from({ length: 40 }, (_, i) => ({ ...worker(`w${String(i).padStart(2, '0')}`, 'idle'), keys }));
    const seen: string[] = [];
    let cursor: string | undefined;
    for (let pages = 0; pages < 40; pages++) {
      const page = await workerPage(fat, { limit: LIMITS.listMaxWorkers, ...(cursor ? { cursor } : {}) });
      assert.ok(page.workers.length >= 1);
      assert.ok(Buffer.byteLength(JSON.stringify(page), 'utf8') <= LIMITS.listWorkersPageMaxBytes + 1024, 'the page fits its bound (and the counts)');
      seen.push(...page.workers.map((w) => w.id));
      if (page.nextCursor === null) break;
      cursor = page.nextCursor;
    }
    assert.deepEqual(seen, fat.map((w) => w.id), 'every worker once, in order');
  });

  it('reads whole only the workers of the page, from summaries of all, and leaves out one pruned in between', async () => {
    const asked: string[][] = [];
    const load = async (ids: string[]) => {
      asked.push(ids);
      return ids.filter((id) => id !== 'b').map((id) => ({ ...worker(id, 'idle'), keys: ['k'] }));
    };
    const page = await workerPage(all, { limit: 3 }, load);
    assert.deepEqual(asked, [['a', 'b', 'c']]);
    assert.deepEqual(page.workers.map((w) => [w.id, w.keys]), [['a', ['k']], ['c', ['k']]]);
    assert.equal(page.nextCursor, 'c');
  });
});
