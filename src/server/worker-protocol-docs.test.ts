// docs/worker-protocol.md is the contract for workers in other languages;
// these tests fail when it and the code disagree.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { PROTOCOL_DEFAULTS } from '../types/limits.ts';
import { CLOSE_CODES, PROTOCOL_VERSION, type CoordinatorFrame, type WorkerFrame } from '../types/protocol.ts';
import { WORKER_FRAME_TYPES } from './worker-frames.ts';

const md = readFileSync(new URL('../../docs/worker-protocol.md', import.meta.url), 'utf8');
const formatted = (n: number): string => n.toLocaleString('en-US').replaceAll(',', '_');

// Records keyed by the frame unions: adding a frame type without listing it here does not compile.
const WORKER_TYPES: Record<WorkerFrame['type'], true> = { hello: true, heartbeat: true, progress: true, complete: true, fail: true, keys: true, drain: true, published: true };
const COORDINATOR_TYPES: Record<CoordinatorFrame['type'], true> = { welcome: true, assign: true, revoke: true, ack: true, error: true, publish: true, discard: true, recorded: true };

describe('docs/worker-protocol.md', () => {
  it('documents every frame type, each with a section and an example', () => {
    assert.deepEqual([...WORKER_FRAME_TYPES].sort(), Object.keys(WORKER_TYPES).sort(), 'the validator knows every worker frame');
    for (const type of [...Object.keys(WORKER_TYPES), ...Object.keys(COORDINATOR_TYPES)]) {
      assert.ok(md.includes(`\n### ${type}\n`), `a section for ${type}`);
      assert.match(md, new RegExp(`\\{\\s*"type": "${type}"`), `an example of ${type}`);
    }
  });

  it('lists every close code and protocol limit with its value, and the version', () => {
    for (const [name, code] of Object.entries(CLOSE_CODES)) assert.ok(md.includes(`\n| ${code} | `), `close code ${name} = ${code}`);
    for (const [name, value] of Object.entries(PROTOCOL_DEFAULTS)) {
      assert.ok(md.includes(`| \`${name}\` | ${formatted(value)} |`), `${name} = ${formatted(value)}`);
    }
    assert.ok(md.includes(`Protocol version: **${PROTOCOL_VERSION}**`));
  });
});
