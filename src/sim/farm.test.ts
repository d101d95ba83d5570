// The farm file: what it refuses, and a smoke run of the example farm.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parse } from 'smol-toml';
import { isGafferError } from '../types/errors.ts';
import { farmScenario, parseFarm } from './farm.ts';
import { POLICIES, simulate } from './index.ts';

const example = (): Record<string, unknown> =>
  parse(readFileSync(new URL('../../examples/farm-32gib.toml', import.meta.url), 'utf8')) as Record<string, unknown>;

function refused(raw: Record<string, unknown>, message: RegExp): void {
  assert.throws(() => parseFarm(raw), (err: unknown) => isGafferError(err, 'INVALID_INPUT') && message.test((err as Error).message));
}

describe('farm file', () => {
  it('reads the example: six phases in pipeline order, eight workers, 32 sectors', () => {
    const f = parseFarm(example());
    assert.deepEqual(f.phases.map((p) => p.name), ['ap', 'pc1', 'pc2', 'c1', 'c2', 'finalize']);
    assert.equal(f.workers.length, 8);
    assert.equal(f.workers[0]!.name, 'sealer-48c-1');
    assert.deepEqual(f.workers[0]!.bays, { queue: 'ap', count: 8 });
    const s = farmScenario(f, { seed: 1, faults: false });
    assert.equal(s.jobs.length, 32 * 6);
    assert.deepEqual(s.jobs.find((j) => j.key === 'i00001.pc2')!.parents, ['i00001.pc1']);
    assert.deepEqual(s.jobs.find((j) => j.key === 'i00001.pc1')!.affinity, { key: 'item-i00001', mode: 'require' });
  });

  it('refuses a key it does not know, naming it', () => {
    const raw = example();
    (raw.workers as Record<string, unknown>[])[1]!.coresPerSocket = 2;
    refused(raw, /workers\[1\]\.coresPerSocket is not a key/);
    refused({ ...example(), extra: 1 }, /the file\.extra is not a key/);
  });

  it('refuses a negative or fractional count', () => {
    const raw = example();
    (raw.workers as Record<string, unknown>[])[0]!.count = -2;
    refused(raw, /workers\[0\]\.count must be at least 1 \(got -2\)/);
    const half = example();
    (half.arrival as Record<string, unknown>).count = 1.5;
    refused(half, /arrival\.count must be a whole number/);
  });

  it('refuses an edge naming an unknown phase, and a cycle', () => {
    refused({ ...example(), edges: [['ap', 'pc1'], ['pc1', 'pc3']] }, /edges\[1\] names phase "pc3", which no \[\[phases\]\] table defines/);
    refused({ ...example(), edges: [['ap', 'pc1'], ['pc1', 'ap']] }, /cycle/);
  });

  it('refuses a bay freed by a phase that does not run where the data is', () => {
    const raw = example();
    (raw.phases as Record<string, unknown>[])[5]!.local = false;
    refused(raw, /phase finalize has bay = "free" but is not local/);
  });

  it('refuses a phase no worker can run, and too many jobs', () => {
    const raw = example();
    (raw.phases as Record<string, unknown>[])[4]!.gpus = 8;
    refused(raw, /no worker has slots for phase c2/);
    const big = example();
    (big.arrival as Record<string, unknown>).count = 1_000_000;
    refused(big, /at most 20000/);
  });

  it('smoke: the example farm, one seed, reports every policy and every figure', async () => {
    const r = await simulate({ scenario: 'farm', farm: parseFarm(example()), seed: 1 });
    assert.equal(r.scenario, 'farm-32gib');
    assert.deepEqual(r.policies.map((p) => p.policy), POLICIES.map((p) => p.name));
    assert.ok(r.lowerBound.ms > 0);
    for (const p of r.policies) {
      assert.equal(p.jobs.total, 192, p.policy);
      assert.equal(p.jobs.succeeded + p.jobs.expired + p.jobs.failed, p.jobs.total, p.policy);
      assert.ok(p.makespanMs >= p.lowerBoundMs && Number.isFinite(p.ratio), p.policy);
      assert.ok(r.bottleneck in p.utilisation, p.policy);
      assert.ok(Number.isFinite(p.waitMs.p50) && Number.isFinite(p.waitMs.p99), p.policy);
    }
    const again = await simulate({ scenario: 'farm', farm: parseFarm(example()), seed: 1 });
    assert.deepEqual(again.policies.map((p) => p.makespanMs), r.policies.map((p) => p.makespanMs));
  });
});
