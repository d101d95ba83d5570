// docs/http-api.md is the API's reference for people; this test fails when a
// route is served that it has no section for.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ROUTES } from './routes.ts';

const md = readFileSync(new URL('../../docs/http-api.md', import.meta.url), 'utf8');

describe('docs/http-api.md', () => {
  it('has a section for every route', () => {
    const headings = md.split('\n').filter((l) => l.startsWith('### '));
    const documents = (h: string, title: string): boolean => h.startsWith(title) && ['', ' ', ':', '?'].includes(h.charAt(title.length));
    const missing = ROUTES.filter((r) => !headings.some((h) => documents(h, `### ${r.method} ${r.url}`)));
    assert.deepEqual(missing.map((r) => `${r.method} ${r.url}`), []);
  });
});
