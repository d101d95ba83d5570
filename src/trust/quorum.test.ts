// Unit tests of decideQuorum: accepting, waiting, adding replicas, giving up,
// and the reasons it gives.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decideQuorum, type Ballot, type QuorumParams } from './quorum.ts';

// 64 hex characters each; reasons show the first 12.
const HASH_A = '1a2b3c4d5e6f' + '0'.repeat(52);
const HASH_B = '9f8e7d6c5b4a' + '1'.repeat(52);
const HASH_C = 'c0ffee000000' + '2'.repeat(52);

function ballot(n: number, hash: string): Ballot {
  return { attemptId: `a${n}`, workerId: `w${n}`, hash };
}

function decide(ballots: Ballot[], over: Partial<QuorumParams> = {}) {
  return decideQuorum({ ballots, quorum: 2, margin: 1, pending: 0, extraReplicasUsed: 0, extraReplicasMax: 2, ...over });
}

describe('decideQuorum', () => {
  it('accepts 2 of 3 and names the dissenter', () => {
    const ballots = [ballot(1, HASH_A), ballot(2, HASH_B), ballot(3, HASH_A)];
    assert.deepEqual(decide(ballots), { kind: 'accept', hash: HASH_A, valid: ['a1', 'a3'], invalid: ['a2'] });
  });

  it('accepts as soon as the quorum is reached, with attempts still pending', () => {
    const ballots = [ballot(1, HASH_A), ballot(2, HASH_A)];
    assert.deepEqual(decide(ballots, { pending: 1 }), { kind: 'accept', hash: HASH_A, valid: ['a1', 'a2'], invalid: [] });
  });

  it('waits while attempts are pending and no hash has the quorum', () => {
    assert.deepEqual(decide([ballot(1, HASH_A), ballot(2, HASH_B)], { pending: 1 }), { kind: 'wait' });
    assert.deepEqual(decide([], { pending: 3 }), { kind: 'wait' });
    // Pending wins over an exhausted replica budget: the last result may agree.
    assert.deepEqual(decide([ballot(1, HASH_A)], { pending: 1, extraReplicasUsed: 2 }), { kind: 'wait' });
  });

  it('adds a replica on a 1-1 tie', () => {
    assert.deepEqual(decide([ballot(1, HASH_A), ballot(2, HASH_B)], { extraReplicasUsed: 1 }), {
      kind: 'add-replica',
      reason:
        'no 2 of 2 results agreed: 2 different results (1a2b3c4d5e6f from w1; 9f8e7d6c5b4a from w2); ' +
        'adding extra replica 2 of 2',
      split: 'no 2 of 2 results agreed: 2 different results (1a2b3c4d5e6f from w1; 9f8e7d6c5b4a from w2)',
    });
  });

  it('gives up when the extra replicas are spent, largest group first', () => {
    const ballots = [ballot(1, HASH_A), ballot(2, HASH_B), ballot(3, HASH_B)];
    assert.deepEqual(decide(ballots, { quorum: 3, extraReplicasUsed: 2 }), {
      kind: 'no-quorum',
      reason:
        'no 3 of 3 results agreed: 2 different results (9f8e7d6c5b4a from w2, w3; 1a2b3c4d5e6f from w1); ' +
        'all 2 extra replicas used',
    });
  });

  it('gives up at once when no extra replicas are allowed', () => {
    const ballots = [ballot(1, HASH_A), ballot(2, HASH_B), ballot(3, HASH_C)];
    const outcome = decide(ballots, { extraReplicasMax: 0 });
    assert.ok(outcome.kind === 'no-quorum', outcome.kind);
    assert.equal(
      outcome.reason,
      'no 2 of 3 results agreed: 3 different results (1a2b3c4d5e6f from w1; 9f8e7d6c5b4a from w2; c0ffee000000 from w3); ' +
        'no extra replicas allowed',
    );
  });

  it('says when fewer results came in than the quorum needs', () => {
    const same = decide([ballot(1, HASH_A), ballot(2, HASH_A)], { quorum: 3 });
    assert.ok(same.kind === 'add-replica', same.kind);
    assert.match(same.reason, /^only 2 of 3 matching results needed came in: all the same \(1a2b3c4d5e6f from w1, w2\)/);
    const differ = decide([ballot(1, HASH_A), ballot(2, HASH_B)], { quorum: 3 });
    assert.ok(differ.kind === 'add-replica', differ.kind);
    assert.match(differ.reason, /^only 2 of 3 matching results needed came in: 2 different results \(/);
  });

  it('bounds the groups and worker ids a reason names', () => {
    // One group of 10 (a0..a9), then 9 singletons: 10 groups, 19 ballots.
    const big = Array.from({ length: 10 }, (_, i) => ballot(i, HASH_A));
    const singles = Array.from({ length: 9 }, (_, i) => ballot(10 + i, `${i}`.repeat(64)));
    const outcome = decide([...singles, ...big], { quorum: 11, extraReplicasMax: 0 });
    assert.ok(outcome.kind === 'no-quorum', outcome.kind);
    const shown = singles.slice(0, 7).map((b) => `${b.hash.slice(0, 12)} from ${b.workerId}`);
    assert.equal(
      outcome.reason,
      'no 11 of 19 results agreed: 10 different results (' +
        '1a2b3c4d5e6f from w0, w1, w2, w3, w4, w5, w6, w7 and 2 more; ' +
        shown.join('; ') +
        '; and 2 more); no extra replicas allowed',
    );
  });

  it('accepts a single ballot with quorum 1', () => {
    assert.deepEqual(decide([ballot(1, HASH_A)], { quorum: 1 }), { kind: 'accept', hash: HASH_A, valid: ['a1'], invalid: [] });
  });

  it('with quorum at most half, prefers more ballots, and a tie is no verdict', () => {
    const more = decide([ballot(1, HASH_A), ballot(2, HASH_B), ballot(3, HASH_B)], { quorum: 1 });
    assert.deepEqual(more, { kind: 'accept', hash: HASH_B, valid: ['a2', 'a3'], invalid: ['a1'] });
    const tie = decide([ballot(1, HASH_B), ballot(2, HASH_A), ballot(3, HASH_A), ballot(4, HASH_B)]);
    assert.ok(tie.kind === 'add-replica', tie.kind);
    assert.match(tie.reason, /^the vote is split, the leading result 0 ahead where 1 are needed: 2 different results/);
  });

  describe('margin', () => {
    it('two colluders answering first do not settle a job while an honest replica is out', () => {
      const liars = [ballot(1, HASH_B), ballot(2, HASH_B)];
      assert.deepEqual(decide(liars, { margin: 2, pending: 1 }), { kind: 'wait' });
      // The honest result comes in: 2 against 1 is a lead of 1, short of 2: another replica.
      const split = decide([...liars, ballot(3, HASH_A)], { margin: 2 });
      assert.ok(split.kind === 'add-replica', split.kind);
      assert.match(split.reason, /^the vote is split, the leading result 1 ahead where 2 are needed/);
      // Two more honest results: 3 against 2 is not enough, 4 against 2 is.
      assert.equal(decide([...liars, ballot(3, HASH_A), ballot(4, HASH_A), ballot(5, HASH_A)], { margin: 2, extraReplicasUsed: 2, extraReplicasMax: 4 }).kind, 'add-replica');
      const won = decide([...liars, ballot(3, HASH_A), ballot(4, HASH_A), ballot(5, HASH_A), ballot(6, HASH_A)], { margin: 2 });
      assert.deepEqual(won, { kind: 'accept', hash: HASH_A, valid: ['a3', 'a4', 'a5', 'a6'], invalid: ['a1', 'a2'] });
    });

    it('accepts a unanimous vote, and early only when the pending attempts cannot change it', () => {
      const three = [ballot(1, HASH_A), ballot(2, HASH_A), ballot(3, HASH_A)];
      assert.equal(decide(three, { margin: 2 }).kind, 'accept');
      assert.deepEqual(decide(three.slice(0, 2), { margin: 2, pending: 1 }), { kind: 'wait' });
      const four = [...three, ballot(4, HASH_A)];
      assert.equal(decide(four, { quorum: 3, margin: 2, pending: 1 }).kind, 'accept');
    });

    it('gives up with the split named when the replicas run out', () => {
      const outcome = decide([ballot(1, HASH_B), ballot(2, HASH_B), ballot(3, HASH_A)], { margin: 2, extraReplicasUsed: 2 });
      assert.ok(outcome.kind === 'no-quorum', outcome.kind);
      assert.match(outcome.reason, /the leading result 1 ahead where 2 are needed: 2 different results \(9f8e7d6c5b4a from w1, w2; 1a2b3c4d5e6f from w3\); all 2 extra replicas used$/);
    });

    it('is an integer >= 1', () => {
      assert.throws(() => decide([], { margin: 0 }), /invariant violated/);
    });
  });

  it('says no results came in when there are none', () => {
    assert.deepEqual(decide([]), {
      kind: 'add-replica',
      reason: 'no results came in (2 matching needed); adding extra replica 1 of 2',
      split: 'no results came in (2 matching needed)',
    });
    assert.deepEqual(decide([], { extraReplicasMax: 0 }), {
      kind: 'no-quorum',
      reason: 'no results came in (2 matching needed); no extra replicas allowed',
    });
  });

  it('refuses a quorum below 1, negative counts and repeated attempt ids', () => {
    assert.throws(() => decide([], { quorum: 0 }), /invariant violated/);
    assert.throws(() => decide([], { pending: -1 }), /invariant violated/);
    assert.throws(() => decide([ballot(1, HASH_A), ballot(1, HASH_B)]), /invariant violated/);
  });
});
