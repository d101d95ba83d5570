import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { sharesOf, unitHash } from './shares.ts';
import { ALL_SHARES, SHARE_COUNT } from '../types/shares.ts';

const ids = ['c-1', 'c-2', 'c-3', 'c-4', 'c-5'];

describe('shares (weighted rendezvous)', () => {
  it('gives a coordinator alone every share (no share at all)', () => {
    assert.equal(sharesOf('c-1', []), null);
    assert.equal(sharesOf('c-1', [{ id: 'c-1', weight: 8 }]), null);
  });

  it('splits every share among the live coordinators, each once, in proportion to weight', () => {
    const members = ids.map((id, i) => ({ id, weight: i === 0 ? 4 : 1 }));
    const owned = ids.map((id) => sharesOf(id, members)!);
    const all = owned.flat();
    assert.equal(all.length, SHARE_COUNT, 'no share twice, none left out');
    assert.deepEqual([...all].sort(), [...ALL_SHARES].sort());
    // Weight 4 of 8: about half; weight 1 of 8: about an eighth (within a few percent at 1,024 shares).
    assert.ok(Math.abs(owned[0]!.length / SHARE_COUNT - 0.5) < 0.06, `${owned[0]!.length}`);
    for (const o of owned.slice(1)) assert.ok(Math.abs(o.length / SHARE_COUNT - 0.125) < 0.04, `${o.length}`);
  });

  it('moves only the shares of a coordinator that leaves', () => {
    const members = ids.map((id) => ({ id, weight: 1 }));
    const before = new Map(ids.map((id) => [id, new Set(sharesOf(id, members))]));
    const after = members.filter((m) => m.id !== 'c-3');
    for (const id of ids.filter((x) => x !== 'c-3')) {
      const now = new Set(sharesOf(id, after));
      for (const s of before.get(id)!) assert.ok(now.has(s), `${id} keeps share ${s}`);
    }
    const taken = ids.filter((x) => x !== 'c-3').flatMap((id) => sharesOf(id, after)!);
    assert.equal(taken.length, SHARE_COUNT, "c-3's shares went to the others");
  });

  it('splits equally while nobody has workers, and gives nothing to a weightless coordinator beside weighted ones', () => {
    const idle = sharesOf('c-1', [{ id: 'c-1', weight: 0 }, { id: 'c-2', weight: 0 }])!;
    assert.ok(idle.length > 400 && idle.length < 624, `${idle.length}`);
    assert.deepEqual(sharesOf('c-1', [{ id: 'c-1', weight: 0 }, { id: 'c-2', weight: 3 }]), []);
  });

  it('hashes into (0, 1)', () => {
    for (const t of ['', 'a', '00:c-1', 'ZZ:c-5']) {
      const u = unitHash(t);
      assert.ok(u > 0 && u < 1);
    }
  });
});
