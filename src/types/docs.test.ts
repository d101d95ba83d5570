// The docs list every limit and error code; these tests fail when the docs
// and the code disagree.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ERRORS } from './errors.ts';
import {
  BRIDGE_DEFAULTS,
  COORDINATOR_DEFAULTS,
  EXEC_DEFAULTS,
  HTTP_DEFAULTS,
  JOB_DEFAULTS,
  LIMITS,
  POSTGRES_DEFAULTS,
  PROTOCOL_DEFAULTS,
  PUBLISH_DEFAULTS,
  RETENTION_DEFAULTS,
  SCHEDULING_DEFAULTS,
  SPECULATION_DEFAULTS,
  TRUST_DEFAULTS,
  WORKER_DEFAULTS,
} from './limits.ts';

const read = (name: string): string => readFileSync(new URL(`../../docs/${name}`, import.meta.url), 'utf8');
const formatted = (n: number): string => n.toLocaleString('en-US').replaceAll(',', '_');

describe('docs', () => {
  it('docs/limits.md lists every limit and default with its value', () => {
    const md = read('limits.md');
    const tables = [
      LIMITS, JOB_DEFAULTS, SCHEDULING_DEFAULTS, HTTP_DEFAULTS, COORDINATOR_DEFAULTS,
      PROTOCOL_DEFAULTS, WORKER_DEFAULTS, EXEC_DEFAULTS, POSTGRES_DEFAULTS, TRUST_DEFAULTS,
      RETENTION_DEFAULTS, BRIDGE_DEFAULTS, SPECULATION_DEFAULTS,
      PUBLISH_DEFAULTS,
    ];
    for (const table of tables) {
      for (const [name, value] of Object.entries(table)) {
        assert.ok(md.includes(`| \`${name}\` | ${formatted(value)} |`), `docs/limits.md: ${name} = ${formatted(value)}`);
      }
    }
  });

  it('docs/errors.md lists every error code with its status', () => {
    const md = read('errors.md');
    for (const [code, { status }] of Object.entries(ERRORS)) {
      assert.ok(md.includes(`| \`${code}\` | ${status} |`), `docs/errors.md: ${code} ${status}`);
    }
  });
});
