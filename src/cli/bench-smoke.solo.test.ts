// `npm run bench -- --smoke`: a tiny run of the whole benchmark, so that every
// system it measures (Gaffer on SQLite and on PostgreSQL, BullMQ, graphile-worker
// with and without its local queue, pg-boss) keeps working. It checks that the
// run completes and reports every figure, finite, with its ratio to the best
// peer; never how fast anything is.
//
// It needs PostgreSQL's server binaries and redis-server (the bench starts a
// throwaway cluster and server of each), or GAFFER_BENCH_PG_URL and
// GAFFER_BENCH_REDIS_URL; without them it fails saying how to get them.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { FIGURES, figure, type Machine, type SystemResult } from '../../bench/report.ts';
import { SYSTEM_IDS } from '../../bench/systems.ts';
import { runScript } from './testing.ts';

const BENCH = fileURLToPath(new URL('../../bench/run.ts', import.meta.url));
/** The whole smoke run, services included, ends within this. */
const RUN_BOUND_MS = 240_000;

const runBench = (args: string[]) => runScript(BENCH, args, RUN_BOUND_MS);

test('the bench smoke run completes for every system and reports every figure', { timeout: RUN_BOUND_MS + 30_000 }, async () => {
  const out = mkdtempSync(join(tmpdir(), 'gaffer-bench-smoke-test-'));
  try {
    const run = await runBench(['--smoke', '--out', out]);
    assert.equal(
      run.code,
      0,
      `the bench smoke run failed (exit ${run.code ?? run.signal}). It needs PostgreSQL's server binaries and redis-server ` +
        `(Debian: apt-get install -y postgresql redis-server), or GAFFER_BENCH_PG_URL and GAFFER_BENCH_REDIS_URL.\n` +
        `--- stderr (tail) ---\n${run.stderr.slice(-6000)}`,
    );
    const files = readdirSync(out);
    const json = files.find((f) => f.endsWith('-smoke.json'));
    const md = files.find((f) => f.endsWith('-smoke.md'));
    assert.ok(json && md, `the run wrote no report into ${out}: ${files.join(', ')}`);
    const report = JSON.parse(readFileSync(join(out, json), 'utf8')) as {
      machine: Machine;
      results: SystemResult[];
      ratiosToBestPeer: Record<string, Record<string, number | null>>;
    };
    assert.deepEqual(report.results.map((r) => r.id), [...SYSTEM_IDS], 'one result per system, in order');
    for (const r of report.results) {
      for (const f of FIGURES) {
        const v = figure(r, f.key);
        assert.ok(Number.isFinite(v) && v > 0, `${r.id}: ${f.key} is ${v}`);
        const ratio = report.ratiosToBestPeer[r.id]?.[f.key];
        assert.ok(typeof ratio === 'number' && Number.isFinite(ratio) && ratio > 0, `${r.id}: the ratio of ${f.key} to the best peer is ${ratio}`);
      }
      assert.ok(r.latency.samples > 0, `${r.id}: no latency samples`);
    }
    const m = report.machine;
    for (const [k, v] of Object.entries({ cpu: m.cpu, os: m.os, node: m.node, postgres: m.postgres, redis: m.redis })) {
      assert.ok(typeof v === 'string' && v !== '', `the machine's description has no ${k}`);
    }
    assert.ok(m.cores > 0 && m.memoryGiB > 0, 'the machine description has cores and memory');
    const text = readFileSync(join(out, md), 'utf8');
    for (const f of FIGURES) assert.ok(text.includes(f.title), `the markdown has no column ${f.title}`);
    for (const label of new Set(report.results.map((r) => r.label))) assert.ok(text.includes(label), `the markdown does not name ${label}`);
    assert.equal(run.stdout.trim(), text.trim(), 'the report is printed too');
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
