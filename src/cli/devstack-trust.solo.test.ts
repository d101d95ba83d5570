// `gaffer devstack --bad-actors`: eight worker processes, two of them cheating
// (a liar and a sleeper), a replicated phase, and a summary the run's exit
// code stands by. A `.solo.test.ts` file: nine CPU-bound Node processes take a
// two-core machine whole, so `npm test` runs it on its own.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { exitWithin, gaffer, stop, tails } from './testing.ts';

describe('devstack with bad actors (real processes on 127.0.0.1)', () => {
  it('devstack --workers 8 --bad-actors 2 --once accepts no wrong result, quarantines both bad actors and no honest worker, and exits 0', { timeout: 180_000 }, async () => {
    const proc = gaffer('devstack', ['devstack', '--workers', '8', '--bad-actors', '2', '--once', '--port', '0'], {}, true);
    try {
      const exit = await exitWithin(proc, 170_000);
      const out = proc.stdout();
      assert.deepEqual(exit, { code: 0, signal: null }, tails(proc));
      assert.match(out, /^ {2}8 workers connected; submitting 100 jobs/m);
      assert.match(out, /^summary: 100 succeeded, 0 did not, of 100 jobs$/m, tails(proc));
      assert.match(out, /^replicated phase: 60 jobs on hash\.checked, each on 3 workers, accepted when 2 results agree$/m);
      assert.match(out, /^ {2}replicated jobs succeeded: +60 of 60$/m, tails(proc));
      assert.match(out, /^ {2}wrong results accepted: +0 /m, tails(proc));
      assert.match(out, /^ {2}bad actors quarantined: +2 of 2$/m, tails(proc));
      assert.match(out, /^ {2}honest workers quarantined: +0$/m, tails(proc));
      assert.match(out, /^ {2}trust checks: all hold$/m);
      // Per worker: the two bad actors quarantined with the store's reason, the six honest ones not.
      const rows = [...out.matchAll(/^ {4}(dev-\d+|bad-\d+ \((?:liar|sleeper)\)) +(\d+) +(\d+) +(\d+) +(yes: .+|no)$/gm)];
      assert.equal(rows.length, 8, tails(proc));
      for (const [, name, valid, invalid, , quarantined] of rows) {
        if (name!.startsWith('bad-')) {
          assert.match(quarantined!, /^yes: \d+ of \d+ judged results invalid/, `${name}: ${quarantined}`);
          assert.equal(valid, '0', `${name} had a result accepted`);
          assert.ok(Number(invalid) >= 3, `${name}: ${invalid} invalid results`);
        } else {
          assert.equal(quarantined, 'no', `${name}: ${quarantined}`);
          assert.equal(invalid, '0', `${name} had a result rejected`);
        }
      }
      assert.deepEqual(rows.filter((r) => r[1]!.startsWith('bad-')).map((r) => r[1]), ['bad-1 (liar)', 'bad-2 (sleeper)']);
    } finally {
      await stop(proc);
    }
  });

  it('refuses as many bad actors as half of the workers', { timeout: 30_000 }, async () => {
    const proc = gaffer('devstack (refused)', ['devstack', '--workers', '4', '--bad-actors', '2', '--once', '--port', '0'], {}, true);
    const exit = await exitWithin(proc, 25_000);
    assert.deepEqual(exit, { code: 1, signal: null }, tails(proc));
    assert.match(proc.stderr(), /INVALID_INPUT: --bad-actors 2 of --workers 4: bad actors must be fewer than half of the workers/);
    assert.doesNotMatch(proc.stdout(), /coordinator at/, 'nothing started');
  });
});
